"""``lendo-api copy-store``: everything a SQLite file holds, into PostgreSQL.

For a user who outgrows SQLite and keeps the history: applications,
idempotency keys, webhooks, the event log, webhook deliveries and their
attempts, read from one snapshot of the file. Rows are copied in order, in
batches, each batch one transaction; a row already there is left as it is,
unless it is still pending there and further on in the file (the API kept
running meanwhile), so a copy interrupted at any point, or run again later,
finishes the job. After each batch the target is asked how many of the
batch's rows it holds, and the run fails unless that is all of them.

Webhooks are the file's: one rotated or deleted there since an earlier copy
is rotated or deleted in the target too, so a receiver its client removed
never gets events again. Events keep their ``seq`` (and deliveries and
attempts their ids), and each identity is moved past the largest copied, so
a client resuming an event stream with a ``Last-Event-ID`` of the file's API
resumes at the same place. The copied events are not fanned out again: the
file's deliveries are copied instead, with their state.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import uvloop

from lendo_api import postgres_schema, sqlite_schema
from lendo_api.migrations import migrate_postgres, migrate_sqlite
from lendo_api.postgres_store import INSERT_ORDER_LOCK
from lendo_runtime.logs import get_logger

log = get_logger()

_UPSERT = (
    postgres_schema.INSERT_MANY + " ON CONFLICT (id) DO UPDATE SET"
    " status = excluded.status, failure_reason = excluded.failure_reason,"
    " decided_at = excluded.decided_at,"
    " updated_at = excluded.updated_at"
    # Only pending becomes final, as everywhere else.
    " WHERE applications.status = 'pending' AND excluded.status <> 'pending'"
)

_INSERT_KEYS = (
    "INSERT INTO idempotency_keys (scope, key, body_hash, application_id, created_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[])"
    " ON CONFLICT (scope, key) DO NOTHING"
)


_UPSERT_WEBHOOK = (
    postgres_schema.INSERT_WEBHOOK + " ON CONFLICT (id) DO UPDATE SET url = excluded.url,"
    " events = excluded.events, secret = excluded.secret,"
    " previous_secret = excluded.previous_secret,"
    " previous_secret_until = excluded.previous_secret_until"
)

_INSERT_EVENTS = (
    "INSERT INTO events (seq, id, application_id, owner, type, body) OVERRIDING SYSTEM VALUE"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[], $5::text[],"
    " $6::text[]) ON CONFLICT (seq) DO NOTHING"
)

_UPSERT_DELIVERIES = (
    "INSERT INTO webhook_deliveries (id, webhook_id, event_seq, state, attempts, due_at,"
    " finished_at, claims) OVERRIDING SYSTEM VALUE"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::int[],"
    " $6::timestamptz[], $7::timestamptz[], $8::int[])"
    " ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,"
    " due_at = excluded.due_at, finished_at = excluded.finished_at, claims = excluded.claims"
    # Only a pending delivery moves on, as everywhere else.
    " WHERE webhook_deliveries.state = 'pending'"
    " AND excluded.claims >= webhook_deliveries.claims"
)

_INSERT_ATTEMPTS = (
    "INSERT INTO webhook_attempts (id, delivery_id, webhook_id, attempt, attempted_at,"
    " duration_ms, status_code, error) OVERRIDING SYSTEM VALUE"
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[],"
    " $5::timestamptz[], $6::float8[], $7::int[], $8::text[]) ON CONFLICT (id) DO NOTHING"
)


class CopyMismatch(Exception):
    """The target does not hold every row that was copied to it."""


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy found in the file, all of it now in the target."""

    applications: int
    idempotency_keys: int
    webhooks: int
    events: int
    deliveries: int
    attempts: int


def copy_store(source: Path, target: str, *, batch: int) -> Copied:
    """Copy the SQLite file ``source`` into the PostgreSQL database ``target``, migrating both."""
    if not source.is_file():
        raise FileNotFoundError(f"no SQLite database at {source}")
    migrate_sqlite(source)
    migrate_postgres(target)
    with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as file:
        copied = uvloop.run(_copy(file, target, batch))
    log.info(
        "copy_store_done",
        applications=copied.applications,
        idempotency_keys=copied.idempotency_keys,
        webhooks=copied.webhooks,
        events=copied.events,
        deliveries=copied.deliveries,
        attempts=copied.attempts,
    )
    return copied


async def _copy(file: sqlite3.Connection, target: str, batch: int) -> Copied:
    connection = await asyncpg.connect(target)
    # One read transaction: a snapshot of the file, so that no delivery is read
    # without its event, nor an attempt without its delivery, while the API writes on.
    file.execute("BEGIN")
    try:
        applications = 0
        for rows in _batches(file, _APPLICATIONS, batch):
            applications += await _copy_applications(connection, rows)
            log.info("copy_store_progress", applications=applications)
        keys = 0
        for rows in _batches(file, _KEYS, batch):
            keys += await _copy_keys(connection, rows)
        webhooks = await _copy_webhooks(connection, file.execute(_WEBHOOKS).fetchall())
        events = 0
        for rows in _batches(file, _EVENTS, batch):
            events += await _copy_events(connection, rows)
            log.info("copy_store_progress", events=events)
        deliveries = 0
        for rows in _batches(file, _DELIVERIES, batch):
            deliveries += await _copy_deliveries(connection, rows)
        attempts = 0
        for rows in _batches(file, _ATTEMPTS, batch):
            attempts += await _copy_attempts(connection, rows)
    finally:
        file.execute("COMMIT")
        await connection.close()
    return Copied(applications, keys, webhooks, events, deliveries, attempts)


_APPLICATIONS = f"SELECT {sqlite_schema.NAMES} FROM applications ORDER BY seq"  # noqa: S608 - ours
_KEYS = (
    "SELECT scope, key, body_hash, application_id, created_at FROM idempotency_keys"
    " ORDER BY scope, key"
)
_WEBHOOKS = f"SELECT {sqlite_schema.WEBHOOK_NAMES} FROM webhooks ORDER BY id"  # noqa: S608 - ours
_EVENTS = "SELECT seq, id, application_id, owner, type, body FROM events ORDER BY seq"
# SQLite keeps no foreign keys: only rows whose webhook (or delivery) is there.
_DELIVERIES = (
    "SELECT id, webhook_id, event_seq, state, attempts, due_at, finished_at, claims"
    " FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks) ORDER BY id"
)
_ATTEMPTS = (
    "SELECT id, delivery_id, webhook_id, attempt, attempted_at, duration_ms, status_code, error"
    " FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries)"
    " AND webhook_id IN (SELECT id FROM webhooks) ORDER BY id"
)


def _batches(file: sqlite3.Connection, query: str, size: int) -> Iterator[list[Any]]:
    cursor = file.execute(query)
    while rows := cursor.fetchmany(size):
        yield rows


async def _copy_applications(connection: asyncpg.Connection, rows: list[Any]) -> int:
    applications = [sqlite_schema.from_row(row) for row in rows]
    ids = [application.id for application in applications]
    async with connection.transaction():
        # As every insert does: seq values become visible in order beside a running API.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", INSERT_ORDER_LOCK)
        await connection.execute(_UPSERT, *postgres_schema.insert_parameters(applications))
    held = await connection.fetchval(
        "SELECT count(*) FROM applications WHERE id = ANY($1::uuid[])", ids
    )
    return _all_held(len(ids), held, "applications")


async def _copy_keys(connection: asyncpg.Connection, rows: list[Any]) -> int:
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[4] = [datetime.fromisoformat(text) for text in columns[4]]
    await connection.execute(_INSERT_KEYS, *columns)
    held = await connection.fetchval(
        "SELECT count(*) FROM idempotency_keys AS k"
        " JOIN unnest($1::text[], $2::text[]) AS c (scope, key) USING (scope, key)",
        columns[0],
        columns[1],
    )
    return _all_held(len(rows), held, "idempotency keys")


async def _copy_webhooks(connection: asyncpg.Connection, rows: list[Any]) -> int:
    webhooks = [sqlite_schema.webhook_from_row(row) for row in rows]
    ids = [webhook.id for webhook in webhooks]
    async with connection.transaction():
        # Their deliveries and attempts go with them (ON DELETE CASCADE).
        await connection.execute("DELETE FROM webhooks WHERE NOT (id = ANY($1::text[]))", ids)
        await connection.executemany(
            _UPSERT_WEBHOOK, [postgres_schema.webhook_parameters(w) for w in webhooks]
        )
    # The secret tells a webhook the upsert reached from one it left as it was.
    held = await connection.fetchval(
        "SELECT count(*) FROM webhooks JOIN unnest($1::text[], $2::text[]) AS c (id, secret)"
        " USING (id, secret)",
        ids,
        [webhook.secret for webhook in webhooks],
    )
    return _all_held(len(ids), held, "webhooks")


async def _copy_events(connection: asyncpg.Connection, rows: list[Any]) -> int:
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[2] = [UUID(text) for text in columns[2]]
    async with connection.transaction():
        # As every insert of events does: seq values become visible in order.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", INSERT_ORDER_LOCK)
        # The file's deliveries of these events are copied as they are, so the trigger
        # must not write new ones. ALTER TABLE is transactional and locks the table
        # until the commit, so no other writer's event can slip past the trigger.
        await connection.execute("ALTER TABLE events DISABLE TRIGGER event_deliveries")
        await connection.execute(_INSERT_EVENTS, *columns)
        await connection.execute("ALTER TABLE events ENABLE TRIGGER event_deliveries")
        await _advance_identity(connection, "events", "seq")
    held = await connection.fetchval(
        "SELECT count(*) FROM events JOIN unnest($1::bigint[], $2::text[]) AS c (seq, id)"
        " USING (seq, id)",
        columns[0],
        columns[1],
    )
    return _all_held(len(rows), held, "events")


async def _copy_deliveries(connection: asyncpg.Connection, rows: list[Any]) -> int:
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[5] = [datetime.fromisoformat(text) for text in columns[5]]
    columns[6] = [None if text is None else datetime.fromisoformat(text) for text in columns[6]]
    async with connection.transaction():
        await connection.execute(_UPSERT_DELIVERIES, *columns)
        await _advance_identity(connection, "webhook_deliveries", "id")
    held = await connection.fetchval(
        "SELECT count(*) FROM webhook_deliveries"
        " JOIN unnest($1::bigint[], $2::text[], $3::bigint[]) AS c (id, webhook_id, event_seq)"
        " USING (id, webhook_id, event_seq)",
        *columns[:3],
    )
    return _all_held(len(rows), held, "webhook deliveries")


async def _copy_attempts(connection: asyncpg.Connection, rows: list[Any]) -> int:
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[4] = [datetime.fromisoformat(text) for text in columns[4]]
    async with connection.transaction():
        await connection.execute(_INSERT_ATTEMPTS, *columns)
        await _advance_identity(connection, "webhook_attempts", "id")
    held = await connection.fetchval(
        "SELECT count(*) FROM webhook_attempts"
        " JOIN unnest($1::bigint[], $2::bigint[]) AS c (id, delivery_id) USING (id, delivery_id)",
        *columns[:2],
    )
    return _all_held(len(rows), held, "webhook attempts")


def _all_held(copied: int, held: int, what: str) -> int:
    """``copied``, if the target holds every one of them; else :class:`CopyMismatch`."""
    if held != copied:
        raise CopyMismatch(f"{copied} {what} copied, the target holds {held}")
    return copied


async def _advance_identity(connection: asyncpg.Connection, table: str, column: str) -> None:
    """Move ``table``'s identity past its largest ``column``: the next row numbers on from it."""
    await connection.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), max({column}))"  # noqa: S608 - ours
        f" FROM {table} HAVING max({column}) IS NOT NULL"
    )
