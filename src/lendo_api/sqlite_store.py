"""The :class:`~lendo_api.store.ApplicationStore` on one SQLite file."""

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

import aiosqlite
import orjson

from lendo_api.migrations import migrate_sqlite
from lendo_api.sqlite_schema import (
    APPLICATION_JSON,
    CREATED_EVENT_TRIGGER,
    INSERT,
    INSERT_EVENTS,
    INSERT_MANY,
    INSERT_WEBHOOK,
    NAMES,
    WEBHOOK_NAMES,
    WEBHOOK_NAMES_OF_W,
    from_row,
    to_row,
    webhook_from_row,
    webhook_row,
)
from lendo_api.store import (
    IdempotencyKey,
    JsonPage,
    KeyedCreation,
    Status,
    StatusChange,
    StoredApplication,
    StoredEvent,
    UpdateOutcome,
    new_application,
    new_event_id,
)
from lendo_api.timestamps import now, timestamp_text
from lendo_api.webhooks.deliveries import (
    ATTEMPT_COLUMNS,
    AttemptOutcome,
    DueDelivery,
    RecordedAttempt,
    recorded_attempt,
)
from lendo_api.webhooks.registrations import StoredWebhook
from lendo_runtime.batching import Batcher

T = TypeVar("T")

SNAPSHOT_MAX_AGE = 0.05
"""Seconds the loop's shared read snapshot is kept: what another process commits (an
operator's ``requeue-failed``) is seen within this, even while this one writes nothing."""


class SqliteStore:
    """Applications in SQLite (WAL), through one aiosqlite connection for writes, one for reads.

    SQLite allows one writer, so one connection serves every write. It is
    shared, so a lock keeps each caller's statements together: otherwise a
    request could read, or commit, the middle of another caller's transaction.
    Reads are single statements on their own connections, without the lock:
    in WAL mode they see the last commit and never wait for a writer.
    The reads the API serves (one application, a page, as JSON) run on the
    event loop itself, on a plain sqlite3 connection: an indexed read costs
    less there than the hop to an aiosqlite thread and back
    (docs/performance.md). Between writes they share one read transaction
    (:meth:`_quick_read`), which every write ends before it begins. Other
    reads (counts, the outbox sweep) stay on an aiosqlite thread, off the loop.
    Writes run shielded from cancellation, so a cancelled caller never leaves
    a transaction open, and :meth:`close` waits for them.

    Plain creates are group-committed: those that arrive while a transaction
    runs are inserted together in the next one, so a burst of creates costs
    a few executor hops and one commit instead of a commit each.
    """

    def __init__(
        self,
        connection: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        quick_reader: sqlite3.Connection,
    ) -> None:
        self._db = connection
        self._reader = reader
        self._quick_reader = quick_reader
        self._snapshot_began = 0.0
        self._decided: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()
        self._creates: Batcher[StoredApplication, None] = Batcher(self._insert_batch)

    @classmethod
    async def open(cls, path: Path) -> "SqliteStore":
        """Open (or create) the database file, migrating its schema; safe on every start."""
        await asyncio.to_thread(migrate_sqlite, path)
        # isolation_level=None: no implicit transactions, each one is begun explicitly.
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            # NORMAL loses no committed data on a process crash in WAL mode, only on power loss.
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await connection.execute(CREATED_EVENT_TRIGGER)
        except BaseException:
            await connection.close()
            raise
        connection.row_factory = sqlite3.Row
        try:
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await connection.close()
            raise
        reader.row_factory = sqlite3.Row
        quick_reader = sqlite3.connect(path, isolation_level=None)
        # A WAL reader waits only in rare moments (recovery after a crash); briefly, since
        # it waits on the event loop.
        quick_reader.execute("PRAGMA busy_timeout = 50")
        # Plain tuples, not sqlite3.Row: cheaper per row (docs/performance.md).
        return cls(connection, reader, quick_reader)

    async def close(self) -> None:
        await self._creates.drain()
        await self._reader.close()
        self._quick_reader.close()
        async with self._lock:
            await self._db.close()

    async def create(
        self,
        *,
        id: UUID,
        first_name: str,
        last_name: str,
        request_id: str | None,
        owner: str = "",
    ) -> StoredApplication:
        application = new_application(id, first_name, last_name, request_id, owner)
        await self._creates.submit([application])
        return application

    async def create_once(
        self,
        *,
        key: IdempotencyKey,
        id: UUID,
        first_name: str,
        last_name: str,
        request_id: str | None,
        keep_for: timedelta,
    ) -> KeyedCreation:
        application = new_application(id, first_name, last_name, request_id, key.scope)
        created_at = timestamp_text(application.created_at)

        async def create_or_find() -> KeyedCreation:
            async with self._transaction():
                # Claim the key, or take over an expired claim not yet purged; then
                # read back whose claim stands. The claim and the row commit together.
                await self._db.execute(
                    "INSERT INTO idempotency_keys"
                    " (scope, key, body_hash, application_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (scope, key) DO UPDATE SET"
                    " body_hash = excluded.body_hash,"
                    " application_id = excluded.application_id,"
                    " created_at = excluded.created_at"
                    " WHERE idempotency_keys.created_at < ?",
                    (
                        key.scope,
                        key.key,
                        key.body_hash,
                        str(id),
                        created_at,
                        timestamp_text(application.created_at - keep_for),
                    ),
                )
                [claim] = await self._db.execute_fetchall(
                    "SELECT body_hash, application_id FROM idempotency_keys"
                    " WHERE scope = ? AND key = ?",
                    (key.scope, key.key),
                )
                if claim["application_id"] == str(id):
                    await self._db.execute(INSERT, to_row(application))
                    return KeyedCreation(application, True, key.body_hash)
                [row] = await self._db.execute_fetchall(
                    f"SELECT {NAMES} FROM applications WHERE id = ?",  # noqa: S608 - ours
                    (claim["application_id"],),
                )
                return KeyedCreation(from_row(row), False, claim["body_hash"])

        return await self._write(create_or_find)

    async def purge_idempotency_keys(self, *, older_than: timedelta) -> int:
        async def purge() -> int:
            cursor = await self._db.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?",
                (timestamp_text(now() - older_than),),
            )
            return cursor.rowcount

        return await self._write(purge)

    async def get_json(self, id: UUID) -> str | None:
        # SQLite writes the JSON, as for a page: cheaper than building the application
        # in Python to render it (docs/performance.md).
        rows = self._quick_read(
            f"SELECT {APPLICATION_JSON} FROM applications WHERE id = ?",  # noqa: S608 - ours
            (str(id),),
        )
        return cast(str, rows[0][0]) if rows else None

    async def list_page_json(
        self, *, status: Status | None, limit: int, after: int | None
    ) -> JsonPage:
        # SQLite writes each row's JSON; the stored timestamps are already their text.
        rows = self._quick_read(
            *_page_query(f"seq, {APPLICATION_JSON}", status=status, limit=limit, after=after)
        )
        items = [row[1] for row in rows[:limit]]
        return JsonPage(items, rows[limit - 1][0] if len(rows) > limit else None)

    async def apply_updates(self, changes: Sequence[StatusChange]) -> UpdateOutcome:
        if not changes:
            return UpdateOutcome(applied=0, unchanged=0, unknown=0)
        updated_at = timestamp_text(now())
        rows = json.dumps(
            [[str(c.id), c.status, c.failure_reason, timestamp_text(c.decided_at)] for c in changes]
        )

        async def apply() -> UpdateOutcome:
            async with self._transaction():
                # The first change of an id wins, as when applied one by one: MIN(key)
                # makes the bare column "value" that of the first.
                changed = list(
                    await self._db.execute_fetchall(
                        "UPDATE applications SET status = c.value ->> 1,"
                        " failure_reason = c.value ->> 2, decided_at = c.value ->> 3,"
                        " updated_at = ?"
                        " FROM (SELECT value, MIN(key) FROM json_each(?) GROUP BY value ->> 0) AS c"
                        " WHERE applications.id = c.value ->> 0 AND applications.status = 'pending'"
                        " RETURNING applications.id",
                        (updated_at, rows),
                    )
                )
                applied = len(changed)
                if changed:
                    await self._db.execute(
                        INSERT_EVENTS, (_event_ids([row["id"] for row in changed]),)
                    )
                [(unknown,)] = await self._db.execute_fetchall(
                    "SELECT COUNT(*) FROM json_each(?) AS change WHERE NOT EXISTS"
                    " (SELECT 1 FROM applications WHERE applications.id = change.value)",
                    (json.dumps([str(change.id) for change in changes]),),
                )
            return UpdateOutcome(
                applied=applied, unchanged=len(changes) - applied - unknown, unknown=unknown
            )

        outcome = await self._write(apply)
        if outcome.applied:
            for wake in self._decided:
                wake()
        return outcome

    async def application_events_json(self, id: UUID) -> list[str] | None:
        rows = self._quick_read(
            "SELECT body FROM events WHERE application_id = ? ORDER BY seq", (str(id),)
        )
        if rows:
            return [row[0] for row in rows]
        # An application of before the event log has no events, yet exists.
        known = self._quick_read("SELECT 1 FROM applications WHERE id = ?", (str(id),))
        return [] if known else None

    async def events_after(
        self, after: int, *, application_id: UUID | None, owner: str | None, limit: int
    ) -> list[StoredEvent]:
        # Every write here commits in seq order (one writer), so a cursor never skips one.
        rows = self._quick_read(
            "SELECT seq, application_id, owner, type, body FROM events"
            " WHERE seq > ? AND (?2 IS NULL OR application_id = ?2)"
            " AND (?3 IS NULL OR owner = ?3) ORDER BY seq LIMIT ?4",
            (after, None if application_id is None else str(application_id), owner, limit),
        )
        return [
            StoredEvent(seq, UUID(application), event_owner, type, body)
            for seq, application, event_owner, type, body in rows
        ]

    async def last_event_cursor(self) -> int:
        [(last,)] = self._quick_read("SELECT coalesce(max(seq), 0) FROM events", ())
        return int(last)

    async def follow_event_commits(self, wake: Callable[[], None]) -> None:
        # Only this process writes the file, so its own commits are all there are to follow.
        self._decided.append(wake)
        try:
            await asyncio.Event().wait()
        finally:
            self._decided.remove(wake)

    async def due_for_publish(
        self, *, older_than: timedelta, limit: int
    ) -> list[StoredApplication]:
        # The outbox's own index is in sweep order, so the walk stops at the batch;
        # left to itself, SQLite sorts every pending row (docs/performance.md).
        rows = await self._read(
            f"SELECT {NAMES} FROM applications INDEXED BY applications_to_publish"  # noqa: S608
            " WHERE status = 'pending' AND (published_at IS NULL OR published_at < ?)"
            " ORDER BY published_at, seq LIMIT ?",
            (timestamp_text(now() - older_than), limit),
        )
        return [from_row(row) for row in rows]

    async def mark_published(self, ids: Sequence[UUID]) -> None:
        if not ids:
            return

        async def mark() -> None:
            # "+status" keeps the planner on the id index: otherwise it walks every
            # pending row of the (status, seq) index, a cost growing with the backlog.
            await self._db.execute(
                "UPDATE applications SET published_at = ?"
                " WHERE id IN (SELECT value FROM json_each(?)) AND +status = 'pending'",
                (timestamp_text(now()), json.dumps([str(id) for id in ids])),
            )

        await self._write(mark)

    async def mark_unpublished(self, ids: Sequence[UUID]) -> None:
        if not ids:
            return

        async def mark() -> None:
            await self._db.execute(
                "UPDATE applications SET published_at = NULL"
                " WHERE id IN (SELECT value FROM json_each(?)) AND +status = 'pending'",
                (json.dumps([str(id) for id in ids]),),
            )

        await self._write(mark)

    async def requeue_failed(self, ids: Sequence[UUID] | None) -> list[UUID]:
        chosen = None if ids is None else json.dumps([str(id) for id in ids])

        async def requeue() -> list[UUID]:
            rows = await self._db.execute_fetchall(
                "UPDATE applications SET status = 'pending', failure_reason = NULL,"
                " decided_at = NULL, published_at = NULL, updated_at = ?"
                " WHERE status = 'failed'"
                " AND (? IS NULL OR id IN (SELECT value FROM json_each(?))) RETURNING id",
                (timestamp_text(now()), chosen, chosen),
            )
            return [UUID(row["id"]) for row in rows]

        return await self._write(requeue)

    async def add_webhook(self, webhook: StoredWebhook) -> None:
        async def add() -> None:
            await self._db.execute(INSERT_WEBHOOK, webhook_row(webhook))

        await self._write(add)

    async def webhooks_of(self, owner: str) -> list[StoredWebhook]:
        rows = await self._read(
            f"SELECT {WEBHOOK_NAMES} FROM webhooks WHERE owner = ?"  # noqa: S608 - ours
            " ORDER BY created_at, id",
            (owner,),
        )
        return [webhook_from_row(row) for row in rows]

    async def webhook(self, id: str, owner: str) -> StoredWebhook | None:
        rows = await self._read(
            f"SELECT {WEBHOOK_NAMES} FROM webhooks WHERE id = ? AND owner = ?",  # noqa: S608 - ours
            (id, owner),
        )
        return webhook_from_row(rows[0]) if rows else None

    async def delete_webhook(self, id: str, owner: str) -> bool:
        async def delete() -> bool:
            async with self._transaction():
                cursor = await self._db.execute(
                    "DELETE FROM webhooks WHERE id = ? AND owner = ?", (id, owner)
                )
                if cursor.rowcount == 0:
                    return False
                await self._db.execute("DELETE FROM webhook_attempts WHERE webhook_id = ?", (id,))
                await self._db.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (id,))
                return True

        return await self._write(delete)

    async def rotate_webhook_secret(
        self, id: str, owner: str, *, secret: str, previous_until: datetime
    ) -> StoredWebhook | None:
        async def rotate() -> StoredWebhook | None:
            rows = await self._db.execute_fetchall(
                "UPDATE webhooks SET previous_secret = secret,"  # noqa: S608 - ours
                " previous_secret_until = ?, secret = ? WHERE id = ? AND owner = ?"
                f" RETURNING {WEBHOOK_NAMES}",
                (timestamp_text(previous_until), secret, id, owner),
            )
            return next((webhook_from_row(row) for row in rows), None)

        return await self._write(rotate)

    async def claim_deliveries(
        self, *, limit: int, per_webhook: int, skip_webhooks: Sequence[str], claim_for: timedelta
    ) -> list[DueDelivery]:
        moment = now()
        due = timestamp_text(moment)
        # Most looks find nothing due: answered by an index, without taking the write lock.
        if not self._quick_read(
            "SELECT 1 FROM webhook_deliveries INDEXED BY webhook_deliveries_next"
            " WHERE state = 'pending' AND due_at <= ? LIMIT 1",
            (due,),
        ):
            return []

        async def claim() -> list[DueDelivery]:
            async with self._transaction():
                claimed = await self._db.execute_fetchall(
                    "UPDATE webhook_deliveries SET claims = claims + 1, due_at = ?"
                    " WHERE id IN (SELECT d.id FROM webhooks AS w JOIN webhook_deliveries AS d"
                    " ON d.id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = w.id"
                    " AND state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?)"
                    " WHERE w.id NOT IN (SELECT value FROM json_each(?)) LIMIT ?)"
                    " RETURNING id",
                    (
                        timestamp_text(moment + claim_for),
                        due,
                        per_webhook,
                        json.dumps(list(skip_webhooks)),
                        limit,
                    ),
                )
                if not claimed:
                    return []
                rows = await self._db.execute_fetchall(
                    f"SELECT d.id, d.attempts + 1, d.claims, e.id, e.body, {WEBHOOK_NAMES_OF_W}"  # noqa: S608
                    " FROM webhook_deliveries AS d JOIN events AS e ON e.seq = d.event_seq"
                    " JOIN webhooks AS w ON w.id = d.webhook_id"
                    " WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.due_at, d.id",
                    (json.dumps([row["id"] for row in claimed]),),
                )
            return [
                DueDelivery(row[0], row[1], row[2], row[3], row[4], webhook_from_row(row[5:]))
                for row in rows
            ]

        return await self._write(claim)

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        if not outcomes:
            return
        rows = json.dumps(
            [
                [
                    o.delivery_id,
                    o.attempt,
                    timestamp_text(o.attempted_at),
                    o.duration * 1000,
                    o.status_code,
                    o.error,
                    o.state,
                    None if o.next_attempt_at is None else timestamp_text(o.next_attempt_at),
                    o.claim,
                ]
                for o in outcomes
            ]
        )

        async def record() -> None:
            async with self._transaction():
                await self._db.execute(
                    "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt,"
                    " attempted_at, duration_ms, status_code, error)"
                    " SELECT d.id, d.webhook_id, o.value ->> 1, o.value ->> 2, o.value ->> 3,"
                    " o.value ->> 4, o.value ->> 5 FROM json_each(?) AS o"
                    " JOIN webhook_deliveries AS d ON d.id = o.value ->> 0",
                    (rows,),
                )
                # Only the newest claim decides: an attempt whose claim lapsed was retried.
                await self._db.execute(
                    "UPDATE webhook_deliveries SET state = o.value ->> 6, attempts = o.value ->> 1,"
                    " due_at = coalesce(o.value ->> 7, webhook_deliveries.due_at),"
                    " finished_at = CASE WHEN o.value ->> 6 <> 'pending' THEN ? END"
                    " FROM json_each(?) AS o WHERE webhook_deliveries.id = o.value ->> 0"
                    " AND webhook_deliveries.claims = o.value ->> 8"
                    " AND webhook_deliveries.state = 'pending'",
                    (timestamp_text(now()), rows),
                )

        await self._write(record)

    async def purge_deliveries(self, *, older_than: timedelta) -> int:
        before = timestamp_text(now() - older_than)

        async def purge() -> int:
            async with self._transaction():
                await self._db.execute(
                    "DELETE FROM webhook_attempts WHERE delivery_id IN"
                    " (SELECT id FROM webhook_deliveries WHERE finished_at < ?)",
                    (before,),
                )
                cursor = await self._db.execute(
                    "DELETE FROM webhook_deliveries WHERE finished_at < ?", (before,)
                )
                return cursor.rowcount

        return await self._write(purge)

    async def webhook_attempts(
        self, id: str, owner: str, *, limit: int
    ) -> list[RecordedAttempt] | None:
        if not await self._read("SELECT 1 FROM webhooks WHERE id = ? AND owner = ?", (id, owner)):
            return None
        rows = await self._read(
            f"SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts AS a"  # noqa: S608 - ours
            " JOIN webhook_deliveries AS d ON d.id = a.delivery_id"
            " JOIN events AS e ON e.seq = d.event_seq"
            " WHERE a.webhook_id = ? ORDER BY a.id DESC LIMIT ?",
            (id, limit),
        )
        return [recorded_attempt(row, datetime.fromisoformat) for row in rows]

    async def count_by_status(self) -> dict[Status, int]:
        # A scan of the covering (status, seq) index, not the table; once per scrape.
        rows = await self._read("SELECT status, COUNT(*) FROM applications GROUP BY status", ())
        return {cast(Status, status): count for status, count in rows}

    async def check(self) -> bool:
        [(one,)] = await self._read("SELECT 1", ())
        return bool(one == 1)

    async def _insert_batch(self, applications: list[StoredApplication]) -> list[Exception | None]:
        """Insert the batch, and by the created trigger its events, in one statement.

        If the batch fails (an id already used), each is tried alone, so one
        bad create fails by itself and not the others batched with it.
        """
        rows = orjson.dumps([to_row(application) for application in applications]).decode()

        async def insert_all() -> None:
            await self._db.execute(INSERT_MANY, (rows,))

        try:
            await self._write(insert_all)
        except sqlite3.IntegrityError as error:
            if len(applications) == 1:
                return [error]
        else:
            return [None] * len(applications)
        return [result for app in applications for result in await self._insert_batch([app])]

    async def _read(self, sql: str, parameters: tuple[object, ...]) -> list[sqlite3.Row]:
        rows = await self._reader.execute_fetchall(sql, parameters)
        return cast(list[sqlite3.Row], rows)

    def _quick_read(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Read on the event loop: only for indexed reads of a bounded number of rows.

        Between writes, these reads share one read transaction, rather than
        each statement taking and releasing its own WAL snapshot and locks
        (docs/performance.md). Every write of this store ends it first
        (:meth:`_write`), so a read after a write sees it; another process's
        commit (an operator's ``requeue-failed``) is seen once the snapshot is
        :data:`SNAPSHOT_MAX_AGE` old. Reads made while a write runs are
        autocommit, so no shared snapshot is ever held while the writer commits
        and checkpoints (one held across commits would keep the checkpoint from
        catching up, and the WAL would grow while reads and writes never pause).
        """
        reader = self._quick_reader
        if reader.in_transaction and time.monotonic() - self._snapshot_began > SNAPSHOT_MAX_AGE:
            reader.execute("COMMIT")
        if not reader.in_transaction and not self._lock.locked():
            reader.execute("BEGIN")
            self._snapshot_began = time.monotonic()
        return reader.execute(sql, parameters).fetchall()

    def _end_quick_reads(self) -> None:
        if self._quick_reader.in_transaction:
            self._quick_reader.execute("COMMIT")

    async def _write(self, operation: Callable[[], Awaitable[T]]) -> T:
        async def locked() -> T:
            async with self._lock:
                self._end_quick_reads()
                return await operation()

        return await asyncio.shield(locked())

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            await self._db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT may already have rolled back on its own.
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            raise


def _event_ids(application_ids: Sequence[UUID | str]) -> str:
    """The JSON array of ``[application id, new event id]`` that :data:`INSERT_EVENTS` reads."""
    return orjson.dumps([[str(id), new_event_id()] for id in application_ids]).decode()


def _page_query(
    columns: str, *, status: Status | None, limit: int, after: int | None
) -> tuple[str, tuple[object, ...]]:
    """The statement and parameters reading ``columns`` of one page."""
    # One row more than asked tells whether another page follows; an indexed range
    # of at most 1001 rows, so bounded enough for the event loop.
    if status is None:
        return (
            f"SELECT {columns} FROM applications WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608 - columns are ours
            (after or 0, limit + 1),
        )
    return (
        f"SELECT {columns} FROM applications"  # noqa: S608 - columns are ours
        " WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?",
        (status, after or 0, limit + 1),
    )
