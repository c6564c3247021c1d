"""``lendo-api copy-store``: every application and idempotency key of a SQLite file into PostgreSQL.

For a user who outgrows SQLite and keeps the history. Applications are
copied in creation order, in batches, each batch one transaction; a row
already there is left as it is, unless it is still pending there and final
in the file (the API kept running meanwhile), so a copy interrupted at any
point, or run again later, finishes the job. After each batch the target is
asked how many of the batch's ids it holds, and the run fails unless that
is all of them.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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


class CopyMismatch(Exception):
    """The target does not hold every row that was copied to it."""


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy found in the file, all of it now in the target."""

    applications: int
    idempotency_keys: int


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
    )
    return copied


async def _copy(file: sqlite3.Connection, target: str, batch: int) -> Copied:
    connection = await asyncpg.connect(target)
    try:
        applications = 0
        for rows in _batches(file, _APPLICATIONS, batch):
            applications += await _copy_applications(connection, rows)
            log.info("copy_store_progress", applications=applications)
        keys = 0
        for rows in _batches(file, _KEYS, batch):
            keys += await _copy_keys(connection, rows)
    finally:
        await connection.close()
    return Copied(applications, keys)


_APPLICATIONS = f"SELECT {sqlite_schema.NAMES} FROM applications ORDER BY seq"  # noqa: S608 - ours
_KEYS = (
    "SELECT scope, key, body_hash, application_id, created_at FROM idempotency_keys"
    " ORDER BY scope, key"
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
    if held != len(ids):
        raise CopyMismatch(f"{len(ids)} applications copied, the target holds {held}")
    return len(ids)


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
    if held != len(rows):
        raise CopyMismatch(f"{len(rows)} idempotency keys copied, the target holds {held}")
    return len(rows)
