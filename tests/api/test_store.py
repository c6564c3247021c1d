"""The SQLite store: durable, idempotent schema, monotonic updates, outbox order."""

import asyncio
import json
import sqlite3
import uuid
from contextlib import closing
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

from lendo_api.migrations import migrate_sqlite
from lendo_api.models import Application
from lendo_api.rendering import application_fields
from lendo_api.sqlite_schema import COLUMNS
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import (
    IdempotencyKey,
    Status,
    StatusChange,
    StoredApplication,
    UpdateOutcome,
)
from lendo_api.timestamps import now


async def new(store: SqliteStore) -> uuid.UUID:
    created = await store.create(id=uuid.uuid4(), first_name="A", last_name="B", request_id=None)
    return created.id


async def status(store: SqliteStore, application_id: uuid.UUID) -> str:
    application = await store.get_json(application_id)
    assert application is not None
    return str(json.loads(application)["status"])


async def ids(store: SqliteStore, status: Status | None = None) -> list[uuid.UUID]:
    """The ids of every application (of ``status``), in creation order."""
    page = await store.list_page_json(status=status, limit=1000, after=None)
    return [uuid.UUID(json.loads(item)["id"]) for item in page.items]


async def test_applications_survive_a_reopen_and_the_schema_is_created_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    first = await SqliteStore.open(path)
    created = await first.create(
        id=uuid.uuid4(), first_name="Åsa", last_name="Öberg", request_id="r1"
    )
    await first.close()

    again = await SqliteStore.open(path)
    try:
        assert await again.get_json(created.id) == json.dumps(
            application_fields(created), ensure_ascii=False, separators=(",", ":")
        )
    finally:
        await again.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_batch_of_updates_only_ever_moves_pending_to_final(store: SqliteStore) -> None:
    pending, already_final = await new(store), await new(store)
    await store.apply_updates([StatusChange(already_final, "rejected", now())])

    outcome = await store.apply_updates(
        [
            StatusChange(pending, "completed", now()),
            StatusChange(pending, "rejected", now()),
            StatusChange(already_final, "completed", now()),
            StatusChange(uuid.uuid4(), "completed", now()),
        ]
    )

    assert outcome == UpdateOutcome(applied=1, unchanged=2, unknown=1)
    assert await status(store, pending) == "completed"
    assert await status(store, already_final) == "rejected"


async def test_a_read_after_a_write_sees_it(store: SqliteStore) -> None:
    async def pending() -> list[str]:
        page = await store.list_page_json(status="pending", limit=10, after=None)
        return [json.loads(item)["id"] for item in page.items]

    first = await new(store)
    assert await pending() == [str(first)]
    second = await new(store)
    assert await pending() == [str(first), str(second)]
    await store.apply_updates([StatusChange(first, "completed", now())])
    assert await pending() == [str(second)]
    completed = await store.get_json(first)
    assert completed is not None
    assert json.loads(completed)["status"] == "completed"
    replayed = await store.create_once(
        key=IdempotencyKey("client", "key-1", "hash"),
        id=uuid.uuid4(),
        first_name="A",
        last_name="B",
        request_id=None,
        keep_for=timedelta(hours=1),
    )
    assert await store.get_json(replayed.application.id) is not None


async def test_a_read_soon_sees_what_another_process_committed(
    store: SqliteStore, tmp_path: Path
) -> None:
    refused = await new(store)
    await store.apply_updates([StatusChange(refused, "failed", now(), "not valid")])
    assert await status(store, refused) == "failed"

    # An operator's requeue-failed: its own connections, as from another process.
    operator = await SqliteStore.open(tmp_path / "store.sqlite3")
    try:
        assert await operator.requeue_failed(None) == [refused]
    finally:
        await operator.close()

    # This store writes nothing meanwhile, so only the snapshot's age can end it.
    async with asyncio.timeout(5):
        while await status(store, refused) != "pending":  # noqa: ASYNC110 - the file is polled
            await asyncio.sleep(0.01)


async def test_concurrent_writers_each_commit_whole(store: SqliteStore) -> None:
    first = [await new(store) for _ in range(20)]

    created = await asyncio.gather(
        *(new(store) for _ in range(50)),
        store.apply_updates([StatusChange(i, "completed", now()) for i in first]),
    )

    everything = await ids(store)
    assert everything[:20] == first
    assert set(everything[20:]) == set(created[:50])
    assert len(everything) == 70
    assert await ids(store, "completed") == first


async def test_never_published_applications_are_due_first_then_the_longest_quiet(
    store: SqliteStore,
) -> None:
    a, b, c, d = [await new(store) for _ in range(4)]
    await store.mark_published([c])
    await store.mark_published([a])
    await store.apply_updates([StatusChange(d, "completed", now())])

    recent = await store.due_for_publish(older_than=timedelta(hours=1), limit=10)
    everything = await store.due_for_publish(older_than=timedelta(0), limit=10)

    assert [item.id for item in recent] == [b]
    assert [item.id for item in everything] == [b, c, a]


def test_the_column_declaration_is_the_table_the_stored_fields_and_the_public_model(
    tmp_path: Path,
) -> None:
    migrate_sqlite(tmp_path / "schema.sqlite3")
    with closing(sqlite3.connect(tmp_path / "schema.sqlite3")) as db:
        table = [row[1] for row in db.execute("PRAGMA table_info(applications)")]

    declared = [column.name for column in COLUMNS]
    assert table == ["seq", *declared]
    assert declared == [field.name for field in fields(StoredApplication)]
    assert [column.name for column in COLUMNS if column.public] == list(Application.model_fields)
