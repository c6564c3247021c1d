"""Schema migrations: from empty, from the SQLite schema of before, several starts at once."""

import asyncio
import json
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from contextlib import closing
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from yoyo import get_backend, read_migrations

from lendo_api import postgres_schema, sqlite_schema
from lendo_api.migrations import migrate_postgres, migrate_sqlite
from lendo_api.models import Application
from lendo_api.postgres_store import PostgresStore
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import StoredApplication
from lendo_api.timestamps import now, timestamp_text
from lendo_api.webhooks.registrations import StoredWebhook

ROOT = Path(__file__).parent.parent.parent
MIGRATIONS = ROOT / "src" / "lendo_api" / "migrations"

# What SqliteStore.open created before migrations were versioned, word for word.
UNVERSIONED_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    first_name   TEXT NOT NULL,
    last_name    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'rejected')),
    request_id   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX IF NOT EXISTS applications_by_status ON applications (status, seq);
CREATE INDEX IF NOT EXISTS applications_to_publish
    ON applications (published_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL,
    body_hash      TEXT NOT NULL,
    application_id TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
"""

COMPLETED_ID = "3b0c51f6-2f6e-4c83-9a43-7e0f6f3c3a01"
PENDING_ID = "9d1b1e52-0c5a-4a55-8c36-2b4a7f1c9e02"


def unversioned_sqlite_file(path: Path) -> None:
    """A database as the API of before left it: two applications, one idempotency key."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(UNVERSIONED_SQLITE_SCHEMA)
        db.executemany(
            "INSERT INTO applications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    1,
                    COMPLETED_ID,
                    "Åsa",
                    "Öberg",
                    "completed",
                    "req-1",
                    "2026-11-01T10:00:00.000001Z",
                    "2026-11-01T10:00:09.500000Z",
                    "2026-11-01T10:00:00.010000Z",
                ),
                (
                    2,
                    PENDING_ID,
                    "Ada",
                    "Lovelace",
                    "pending",
                    None,
                    "2026-11-01T10:01:00.000000Z",
                    "2026-11-01T10:01:00.000000Z",
                    None,
                ),
            ],
        )
        db.execute(
            "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
            ("client-a", "k-1", "h-1", PENDING_ID, "2999-01-01T00:00:00.000000Z"),
        )
        db.commit()


async def test_a_sqlite_file_of_the_unversioned_schema_upgrades_with_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    unversioned_sqlite_file(path)

    store = await SqliteStore.open(path)
    try:
        completed = await store.get_json(uuid.UUID(COMPLETED_ID))
        pending = await store.get_json(uuid.UUID(PENDING_ID))
        newer = await store.create(
            id=uuid.uuid4(), first_name="Grace", last_name="Hopper", request_id=None
        )
        counts = await store.count_by_status()
        page = await store.list_page_json(status=None, limit=10, after=None)
    finally:
        await store.close()

    assert completed is not None
    assert json.loads(completed) == {
        "id": COMPLETED_ID,
        "first_name": "Åsa",
        "last_name": "Öberg",
        "status": "completed",
        "created_at": "2026-11-01T10:00:00.000001Z",
        "updated_at": "2026-11-01T10:00:09.500000Z",
        "failure_reason": None,
        "decided_at": None,
    }
    assert pending is not None
    assert json.loads(pending)["status"] == "pending"
    assert [json.loads(item)["id"] for item in page.items] == [
        COMPLETED_ID,
        PENDING_ID,
        str(newer.id),
    ]
    assert counts == {"completed": 1, "pending": 2}
    with closing(sqlite3.connect(path)) as db:
        [(key_application,)] = db.execute("SELECT application_id FROM idempotency_keys")
        applied = db.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
    assert key_application == PENDING_ID
    assert applied == [
        ("0001.applications",),
        ("0002.failed",),
        ("0003.events",),
        ("0004.webhooks",),
        ("0005.deliveries",),
        ("0006.finished",),
        ("0007.claims",),
    ]


async def test_a_new_sqlite_file_gets_every_migration_once_over_several_starts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.sqlite3"
    for _ in range(2):
        await (await SqliteStore.open(path)).close()

    with closing(sqlite3.connect(path)) as db:
        applied = db.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
    assert applied == [(f.stem,) for f in sorted((MIGRATIONS / "sqlite").glob("*.sql"))]


def test_a_migration_killed_midway_does_not_lock_out_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    migrate_sqlite(path)
    with closing(sqlite3.connect(path)) as db:
        # yoyo's own lock, as a process killed while holding it leaves it.
        db.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, '2026-01-01', 4242)")
        db.commit()

    migrate_sqlite(path)

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM yoyo_lock").fetchone() == (0,)


async def test_postgresql_from_empty_has_the_columns_the_store_declares(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate_postgres, database_url)

    connection = await asyncpg.connect(database_url)
    try:
        columns = await connection.fetch(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'applications'"
            " ORDER BY ordinal_position"
        )
        applied = await connection.fetch("SELECT migration_id FROM _yoyo_migration")
    finally:
        await connection.close()

    # By name: a column added by a later migration comes last in the table, wherever
    # the declaration puts it.
    declared = {c.name: c.sql_type for c in postgres_schema.COLUMNS}
    assert {row["column_name"]: row["udt_name"] for row in columns} == {
        "seq": "int8",
        **declared,
        "claimed_until": "timestamptz",
    }
    assert [c.name for c in postgres_schema.COLUMNS] == [f.name for f in fields(StoredApplication)]
    public = [c.name for c in postgres_schema.COLUMNS if c.public]
    assert public == list(Application.model_fields)
    assert [row["migration_id"] for row in applied] == [
        f.stem for f in sorted((MIGRATIONS / "postgresql").glob("*.sql"))
    ]


async def test_both_stores_webhooks_tables_have_the_columns_declared(
    database_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate_postgres, database_url)
    migrate_sqlite(tmp_path / "store.sqlite3")

    connection = await asyncpg.connect(database_url)
    try:
        columns = await connection.fetch(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'webhooks'"
            " ORDER BY ordinal_position"
        )
    finally:
        await connection.close()
    with closing(sqlite3.connect(tmp_path / "store.sqlite3")) as db:
        sqlite_columns = [row[1] for row in db.execute("PRAGMA table_info(webhooks)")]

    udt = {"text": "text", "text[]": "_text", "timestamptz": "timestamptz"}
    assert [(row["column_name"], row["udt_name"]) for row in columns] == [
        (c.name, udt[c.sql_type]) for c in postgres_schema.WEBHOOK_COLUMNS
    ]
    assert sqlite_columns == [c.name for c in sqlite_schema.WEBHOOK_COLUMNS]
    assert sqlite_columns == [f.name for f in fields(StoredWebhook)]


async def test_replicas_starting_at_once_migrate_once_and_all_open(database_url: str) -> None:
    stores = await asyncio.gather(
        *(
            PostgresStore.open(database_url, min_size=1, max_size=2, claim_for=timedelta(1))
            for _ in range(4)
        )
    )
    try:
        created = await stores[0].create(
            id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", request_id=None
        )
        seen = [await store.get_json(created.id) for store in stores]
    finally:
        for store in stores:
            await store.close()

    assert len(set(seen)) == 1
    assert seen[0] is not None
    connection = await asyncpg.connect(database_url)
    try:
        applied = await connection.fetchval("SELECT count(*) FROM _yoyo_migration")
    finally:
        await connection.close()
    assert applied == len(list((MIGRATIONS / "postgresql").glob("*.sql")))


async def test_a_postgresql_migration_killed_midway_does_not_lock_out_the_next_start(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate_postgres, database_url)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 4242)"
        )
        await asyncio.to_thread(migrate_postgres, database_url)
        left = await connection.fetchval("SELECT count(*) FROM yoyo_lock")
    finally:
        await connection.close()

    assert left == 0


def test_the_wheel_ships_every_migration(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("lendo-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())

    sources = {
        f"lendo_api/migrations/{path.relative_to(MIGRATIONS)}" for path in MIGRATIONS.rglob("*.sql")
    }
    assert sources
    assert sources <= shipped


def migrate_before(yoyo_url: str, store: str, version: str) -> None:
    """Apply the ``store``'s migrations older than ``version`` to the database at ``yoyo_url``."""
    with get_backend(yoyo_url) as backend, backend.lock():
        older = read_migrations(str(MIGRATIONS / store)).filter(lambda m: m.id < version)
        backend.apply_migrations(backend.to_apply(older))


def sqlite_before(path: Path, version: str) -> sqlite3.Connection:
    """A SQLite file migrated to just before ``version``, holding a webhook and one event."""
    migrate_before(f"sqlite:///{path}", "sqlite", version)
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO webhooks VALUES ('wh_1', '', 'http://127.0.0.1:9/', '[]', 's', NULL,"
        " NULL, '2026-01-01T00:00:00.000000Z')"
    )
    db.execute(
        "INSERT INTO events VALUES (1, 'evt_1', ?, '', 'application.created', '{}')",
        (PENDING_ID,),
    )
    return db


async def test_deliveries_finished_before_0006_age_from_their_last_attempt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    recent = timestamp_text(now())
    with closing(sqlite_before(path, "0006")) as db:
        db.executemany(
            "INSERT INTO webhook_deliveries VALUES (?, 'wh_1', 1, ?, 1, ?)",
            [
                (1, "delivered", "2026-01-01T00:01:00.000000Z"),
                (2, "failed", "2026-01-01T00:01:00.000000Z"),
                (3, "pending", "2026-01-01T00:01:00.000000Z"),
                (4, "delivered", "2026-01-01T00:01:00.000000Z"),
            ],
        )
        db.executemany(
            "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, attempted_at,"
            " duration_ms) VALUES (?, 'wh_1', 1, ?, 1.0)",
            [(1, "2026-01-01T00:00:00.000000Z"), (2, "2026-01-01T00:00:00.000000Z"), (2, recent)],
        )
        db.commit()

    store = await SqliteStore.open(path)
    try:
        purged = await store.purge_deliveries(older_than=timedelta(hours=1))
    finally:
        await store.close()

    # 1 finished long ago; 4 has no attempt, so its last due time counts; 2 tried just now.
    assert purged == 2
    with closing(sqlite3.connect(path)) as db:
        left = db.execute("SELECT id FROM webhook_deliveries ORDER BY id").fetchall()
        attempts = db.execute("SELECT delivery_id FROM webhook_attempts").fetchall()
    assert left == [(2,), (3,)]
    assert attempts == [(2,), (2,)]


async def test_postgresql_deliveries_finished_before_0006_age_from_their_last_attempt(
    database_url: str,
) -> None:
    yoyo_url = "postgresql+psycopg" + database_url.removeprefix("postgresql")
    migrate_before(yoyo_url, "postgresql", "0006")
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO webhooks VALUES ('wh_1', '', 'http://127.0.0.1:9/', '{}', 's', NULL,"
            " NULL, '2026-01-01T00:00:00Z')"
        )
        await connection.execute(
            "INSERT INTO webhook_deliveries (webhook_id, event_seq, state, attempts, due_at)"
            " SELECT 'wh_1', 1, state, 1, '2026-01-01T00:01:00Z'"
            " FROM unnest('{delivered,failed,pending,delivered}'::text[]) AS s (state)"
        )
        await connection.execute(
            "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, attempted_at,"
            " duration_ms) SELECT d, 'wh_1', 1, t, 1.0"
            " FROM unnest('{1,2,2}'::bigint[], $1::timestamptz[]) AS a (d, t)",
            [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), now()],
        )
    finally:
        await connection.close()

    store = await PostgresStore.open(database_url, min_size=1, max_size=1, claim_for=timedelta(1))
    try:
        purged = await store.purge_deliveries(older_than=timedelta(hours=1))
    finally:
        await store.close()

    # 1 finished long ago; 4 has no attempt, so its last due time counts; 2 tried just now.
    assert purged == 2
    connection = await asyncpg.connect(database_url)
    try:
        left = await connection.fetch("SELECT id FROM webhook_deliveries ORDER BY id")
        attempts = await connection.fetch("SELECT delivery_id FROM webhook_attempts")
    finally:
        await connection.close()
    assert [row["id"] for row in left] == [2, 3]
    assert [row["delivery_id"] for row in attempts] == [2, 2]


async def test_a_delivery_claimed_before_0007_keeps_its_recorded_attempts_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    with closing(sqlite_before(path, "0007")) as db:
        # Claimed three times before 0007 (each counted as an attempt); two were recorded.
        db.execute(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_seq, state, attempts, due_at)"
            " VALUES (1, 'wh_1', 1, 'pending', 3, '2026-01-01T00:01:00.000000Z')"
        )
        db.executemany(
            "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, attempted_at,"
            " duration_ms) VALUES (1, 'wh_1', ?, '2026-01-01T00:00:00.000000Z', 1.0)",
            [(1,), (2,)],
        )
        db.commit()

    store = await SqliteStore.open(path)
    try:
        [claimed] = await store.claim_deliveries(
            limit=1, per_webhook=1, skip_webhooks=[], claim_for=timedelta(minutes=1)
        )
    finally:
        await store.close()

    assert (claimed.attempt, claimed.claim) == (3, 4)
