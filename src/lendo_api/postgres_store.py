"""The :class:`~lendo_api.store.ApplicationStore` on PostgreSQL, shared by several replicas."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

import asyncpg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from lendo_api import postgres_schema as schema
from lendo_api.migrations import migrate_postgres
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
from lendo_api.timestamps import now
from lendo_api.webhooks.deliveries import (
    ATTEMPT_COLUMNS,
    AttemptOutcome,
    DueDelivery,
    RecordedAttempt,
    recorded_attempt,
)
from lendo_api.webhooks.registrations import StoredWebhook
from lendo_runtime.batching import Batcher
from lendo_runtime.logs import get_logger

log = get_logger()

EVENTS_CHANNEL = "lendo_events"
"""Notified at the commit of each statement writing decisions' events (migration 0008.notify)."""
_FIRST_RETRY = 0.1
_MAX_RETRY = 5.0

INSERT_ORDER_LOCK = 0x6C656E646F01
"""The advisory lock every insert of applications or events holds until it commits."""

_APPLICATION_BY_ID = f"SELECT {schema.SELECT_COLUMNS} FROM applications AS a WHERE a.id = $1"  # noqa: S608 - ours

_JSON_BY_IDS = (
    f"SELECT a.id, {schema.APPLICATION_JSON} FROM {schema.JSON_FROM}"  # noqa: S608 - ours
    " WHERE a.id = ANY($1::uuid[])"
)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The connection pool as /metrics shows it."""

    size: int
    """Connections open."""
    in_use: int
    """Connections lent out."""
    max_size: int
    waiting: int
    """Callers waiting for a connection right now."""
    acquired: int
    """Connections lent since start."""
    acquire_seconds: float
    """Time callers spent waiting for a connection since start."""


class PostgresStore:
    """Applications in PostgreSQL, through a pool of asyncpg connections.

    Several API replicas share the database; each statement is safe beside the
    same statement on another replica:

    - Inserts hold :data:`INSERT_ORDER_LOCK` to their commit, so ``seq`` values
      become visible in order: a page cursor never skips an application that
      commits after a page was read. Plain creates are group-committed, as on
      SQLite, so the lock is taken once per batch.
    - An idempotency key is claimed by its primary key, in the transaction that
      inserts its application: of concurrent claims, one inserts, the others
      wait for its commit and read the application it made.
    - The outbox sweep claims the rows it publishes for ``claim_for``
      (``claimed_until``, skipping rows another sweep has locked or claimed), so
      two replicas' sweeps never publish the same rows at the same moment.
    - Status changes lock their rows in id order, so two consumers' batches
      never deadlock.
    """

    def __init__(self, pool: asyncpg.Pool, *, url: str, claim_for: timedelta) -> None:
        self._pool = pool
        self._url = url
        self._claim_for = claim_for
        self._creates: Batcher[StoredApplication, None] = Batcher(self._insert_batch)
        # Concurrent GETs share one query: a round trip and a pool acquire per batch,
        # not per request (docs/performance.md, "What changed").
        self._reads: Batcher[UUID, str | None] = Batcher(self._read_batch)
        self._waiting = 0
        self._acquired = 0
        self._acquire_seconds = 0.0

    @classmethod
    async def open(
        cls, url: str, *, min_size: int, max_size: int, claim_for: timedelta
    ) -> "PostgresStore":
        """Migrate the database at ``url`` to the newest schema, then open a pool on it."""
        await asyncio.to_thread(migrate_postgres, url)
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, reset=_session_kept
        )
        return cls(pool, url=url, claim_for=claim_for)

    async def close(self) -> None:
        await self._creates.drain()
        await self._reads.drain()
        await self._pool.close()

    def pool_stats(self) -> PoolStats:
        """The pool right now, and the totals since start."""
        size = self._pool.get_size()
        return PoolStats(
            size=size,
            in_use=size - self._pool.get_idle_size(),
            max_size=self._pool.get_max_size(),
            waiting=self._waiting,
            acquired=self._acquired,
            acquire_seconds=self._acquire_seconds,
        )

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
        async with self._connection() as connection, connection.transaction():
            # Claim the key, or take over an expired claim not yet purged. A claim
            # another transaction holds makes this wait for it to end.
            claimed = await connection.fetchval(
                "INSERT INTO idempotency_keys"
                " (scope, key, body_hash, application_id, created_at)"
                " VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (scope, key) DO UPDATE SET"
                " body_hash = excluded.body_hash,"
                " application_id = excluded.application_id,"
                " created_at = excluded.created_at"
                " WHERE idempotency_keys.created_at < $6"
                " RETURNING true",
                key.scope,
                key.key,
                key.body_hash,
                id,
                application.created_at,
                application.created_at - keep_for,
            )
            if claimed:
                await _insert(connection, [application])
                return KeyedCreation(application, True, key.body_hash)
            claim = await connection.fetchrow(
                "SELECT body_hash, application_id FROM idempotency_keys"
                " WHERE scope = $1 AND key = $2",
                key.scope,
                key.key,
            )
            assert claim is not None, "a key not taken over is held by a committed claim"
            row = await connection.fetchrow(_APPLICATION_BY_ID, claim["application_id"])
            assert row is not None, "a claim commits with its application"
            return KeyedCreation(schema.application(row), False, claim["body_hash"])

    async def purge_idempotency_keys(self, *, older_than: timedelta) -> int:
        async with self._connection() as connection:
            done = await connection.execute(
                "DELETE FROM idempotency_keys WHERE created_at < $1", now() - older_than
            )
        return int(done.split()[-1])

    async def get_json(self, id: UUID) -> str | None:
        [text] = await self._reads.submit([id])
        return text

    async def list_page_json(
        self, *, status: Status | None, limit: int, after: int | None
    ) -> JsonPage:
        # One row more than asked tells whether another page follows.
        sql = f"SELECT a.seq, {schema.APPLICATION_JSON} FROM {schema.JSON_FROM} WHERE a.seq > $1"  # noqa: S608 - ours
        parameters: list[object] = [after or 0, limit + 1]
        if status is not None:
            sql += " AND a.status = $3"
            parameters.append(status)
        async with self._connection() as connection:
            rows = await connection.fetch(sql + " ORDER BY a.seq LIMIT $2", *parameters)
        items = [row[1] for row in rows[:limit]]
        return JsonPage(items, rows[limit - 1][0] if len(rows) > limit else None)

    async def apply_updates(self, changes: Sequence[StatusChange]) -> UpdateOutcome:
        if not changes:
            return UpdateOutcome(applied=0, unchanged=0, unknown=0)
        ids = [change.id for change in changes]
        async with self._connection() as connection, connection.transaction():
            # The events this writes take their cursors in commit order, as inserts do.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", INSERT_ORDER_LOCK)
            rows = await connection.fetch(
                # The first change of an id wins, as when applied one by one.
                "WITH changes AS ("
                " SELECT DISTINCT ON (id) id, status, failure_reason, decided_at"
                " FROM unnest($1::uuid[], $2::text[], $4::text[], $5::timestamptz[])"
                " WITH ORDINALITY AS c (id, status, failure_reason, decided_at, n)"
                " ORDER BY id, n),"
                " locked AS ("
                " SELECT a.seq, changes.status, changes.failure_reason, changes.decided_at"
                " FROM applications AS a JOIN changes USING (id)"
                " WHERE a.status = 'pending' ORDER BY a.id FOR UPDATE OF a)"
                " UPDATE applications AS a SET status = locked.status,"
                " failure_reason = locked.failure_reason, decided_at = locked.decided_at,"
                " updated_at = $3"
                " FROM locked WHERE a.seq = locked.seq RETURNING a.id",
                ids,
                [change.status for change in changes],
                now(),
                [change.failure_reason for change in changes],
                [change.decided_at for change in changes],
            )
            applied = [row["id"] for row in rows]
            if applied:
                await _insert_events(connection, applied)
            unknown = await connection.fetchval(
                "SELECT count(*) FROM unnest($1::uuid[]) AS c (id) WHERE NOT EXISTS"
                " (SELECT 1 FROM applications AS a WHERE a.id = c.id)",
                ids,
            )
        return UpdateOutcome(
            applied=len(applied), unchanged=len(changes) - len(applied) - unknown, unknown=unknown
        )

    async def application_events_json(self, id: UUID) -> list[str] | None:
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT e.body FROM applications AS a"
                " LEFT JOIN events AS e ON e.application_id = a.id"
                " WHERE a.id = $1 ORDER BY e.seq",
                id,
            )
        if not rows:
            return None
        # An application of before the event log has no events, yet exists.
        return [row["body"] for row in rows if row["body"] is not None]

    async def events_after(
        self, after: int, *, application_id: UUID | None, owner: str | None, limit: int
    ) -> list[StoredEvent]:
        # Inserts of events hold INSERT_ORDER_LOCK to their commit: once a cursor is
        # visible, so is every smaller one.
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT seq, application_id, owner, type, body FROM events"
                " WHERE seq > $1 AND ($2::uuid IS NULL OR application_id = $2)"
                " AND ($3::text IS NULL OR owner = $3) ORDER BY seq LIMIT $4",
                after,
                application_id,
                owner,
                limit,
            )
        return [StoredEvent(*row.values()) for row in rows]

    async def last_event_cursor(self) -> int:
        async with self._connection() as connection:
            last = await connection.fetchval("SELECT coalesce(max(seq), 0) FROM events")
        return int(last)

    async def follow_event_commits(self, wake: Callable[[], None]) -> None:
        """LISTEN on a connection of its own, outside the pool, reconnecting after a loss.

        Wakes once on every connect too, for what was committed while it was away.
        """
        while True:
            # A new backoff for each connection: one lost after hours is sought at once.
            connecting = AsyncRetrying(
                retry=retry_if_exception_type((OSError, asyncpg.PostgresError)),
                wait=wait_exponential(multiplier=_FIRST_RETRY, max=_MAX_RETRY),
                before_sleep=_notices_unavailable,
            )
            connection: asyncpg.Connection = await connecting(asyncpg.connect, self._url)
            try:
                await _listen_until_lost(connection, wake)
                log.warning("event_notices_lost")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("event_notices_unavailable", error=str(error), retry_in=_FIRST_RETRY)
                await asyncio.sleep(_FIRST_RETRY)
            finally:
                connection.terminate()

    async def due_for_publish(
        self, *, older_than: timedelta, limit: int
    ) -> list[StoredApplication]:
        moment = now()
        async with self._connection() as connection:
            rows = await connection.fetch(
                "WITH due AS ("  # noqa: S608 - the columns are ours
                " SELECT seq FROM applications"
                " WHERE status = 'pending' AND (published_at IS NULL OR published_at < $1)"
                " AND (claimed_until IS NULL OR claimed_until < $2)"
                " ORDER BY published_at NULLS FIRST, seq LIMIT $3"
                " FOR UPDATE SKIP LOCKED),"
                " claimed AS ("
                " UPDATE applications AS a SET claimed_until = $4 FROM due"
                " WHERE a.seq = due.seq RETURNING a.*)"
                # RETURNING keeps no order: never published first, then the longest unpublished.
                f" SELECT {schema.SELECT_COLUMNS} FROM claimed AS a"
                " ORDER BY a.published_at NULLS FIRST, a.seq",
                moment - older_than,
                moment,
                limit,
                moment + self._claim_for,
            )
        return [schema.application(row) for row in rows]

    async def mark_published(self, ids: Sequence[UUID]) -> None:
        if not ids:
            return
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE applications SET published_at = $1, claimed_until = NULL"
                " WHERE id = ANY($2::uuid[]) AND status = 'pending'",
                now(),
                list(ids),
            )

    async def mark_unpublished(self, ids: Sequence[UUID]) -> None:
        if not ids:
            return
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE applications SET published_at = NULL"
                " WHERE id = ANY($1::uuid[]) AND status = 'pending'",
                list(ids),
            )

    async def requeue_failed(self, ids: Sequence[UUID] | None) -> list[UUID]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                "UPDATE applications SET status = 'pending', failure_reason = NULL,"
                " decided_at = NULL, published_at = NULL, claimed_until = NULL, updated_at = $1"
                " WHERE status = 'failed' AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))"
                " RETURNING id",
                now(),
                None if ids is None else list(ids),
            )
        return [row["id"] for row in rows]

    async def add_webhook(self, webhook: StoredWebhook) -> None:
        async with self._connection() as connection:
            await connection.execute(schema.INSERT_WEBHOOK, *schema.webhook_parameters(webhook))

    async def webhooks_of(self, owner: str) -> list[StoredWebhook]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {schema.WEBHOOK_NAMES} FROM webhooks WHERE owner = $1"  # noqa: S608 - ours
                " ORDER BY created_at, id",
                owner,
            )
        return [schema.webhook(row) for row in rows]

    async def webhook(self, id: str, owner: str) -> StoredWebhook | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {schema.WEBHOOK_NAMES} FROM webhooks"  # noqa: S608 - ours
                " WHERE id = $1 AND owner = $2",
                id,
                owner,
            )
        return None if row is None else schema.webhook(row)

    async def delete_webhook(self, id: str, owner: str) -> bool:
        async with self._connection() as connection:
            done = await connection.execute(
                "DELETE FROM webhooks WHERE id = $1 AND owner = $2", id, owner
            )
        return done != "DELETE 0"

    async def rotate_webhook_secret(
        self, id: str, owner: str, *, secret: str, previous_until: datetime
    ) -> StoredWebhook | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                "UPDATE webhooks SET previous_secret = secret,"  # noqa: S608 - ours
                " previous_secret_until = $1, secret = $2 WHERE id = $3 AND owner = $4"
                f" RETURNING {schema.WEBHOOK_NAMES}",
                previous_until,
                secret,
                id,
                owner,
            )
        return None if row is None else schema.webhook(row)

    async def claim_deliveries(
        self, *, limit: int, per_webhook: int, skip_webhooks: Sequence[str], claim_for: timedelta
    ) -> list[DueDelivery]:
        moment = now()
        async with self._connection() as connection:
            rows = await connection.fetch(
                # A row another replica is claiming is skipped; one it has claimed is no
                # longer due when re-read under its lock.
                "WITH due AS ("  # noqa: S608 - the columns are ours
                " SELECT d.id FROM webhooks AS w CROSS JOIN LATERAL ("
                " SELECT id FROM webhook_deliveries WHERE webhook_id = w.id"
                " AND state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2"
                " FOR UPDATE SKIP LOCKED) AS d"
                " WHERE NOT (w.id = ANY($3::text[])) LIMIT $4),"
                " claimed AS ("
                " UPDATE webhook_deliveries AS d SET claims = d.claims + 1, due_at = $5"
                " FROM due WHERE d.id = due.id"
                " RETURNING d.id, d.attempts, d.claims, d.event_seq, d.webhook_id)"
                f" SELECT c.id, c.attempts + 1, c.claims, e.id, e.body, {schema.WEBHOOK_NAMES_OF_W}"
                " FROM claimed AS c JOIN events AS e ON e.seq = c.event_seq"
                " JOIN webhooks AS w ON w.id = c.webhook_id ORDER BY c.id",
                moment,
                per_webhook,
                list(skip_webhooks),
                limit,
                moment + claim_for,
            )
        return [
            DueDelivery(row[0], row[1], row[2], row[3], row[4], schema.webhook(row[5:]))
            for row in rows
        ]

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        if not outcomes:
            return
        columns = (
            [o.delivery_id for o in outcomes],
            [o.attempt for o in outcomes],
            [o.attempted_at for o in outcomes],
            [o.duration * 1000 for o in outcomes],
            [o.status_code for o in outcomes],
            [o.error for o in outcomes],
            [o.state for o in outcomes],
            [o.next_attempt_at for o in outcomes],
            [o.claim for o in outcomes],
        )
        async with self._connection() as connection, connection.transaction():
            # Lock the deliveries first, in id order: one whose webhook a concurrent delete
            # removes is then skipped, not a foreign key error failing the whole batch,
            # and two batches sharing deliveries lock them in one order, never deadlocking.
            await connection.execute(
                "SELECT id FROM webhook_deliveries WHERE id = ANY($1::bigint[])"
                " ORDER BY id FOR NO KEY UPDATE",
                columns[0],
            )
            await connection.execute(
                "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, attempted_at,"
                " duration_ms, status_code, error)"
                " SELECT d.id, d.webhook_id, o.attempt, o.attempted_at, o.duration_ms,"
                " o.status_code, o.error"
                " FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::float8[],"
                " $5::int[], $6::text[]) AS o (delivery_id, attempt, attempted_at, duration_ms,"
                " status_code, error)"
                " JOIN webhook_deliveries AS d ON d.id = o.delivery_id",
                *columns[:6],
            )
            # Only the newest claim decides: an attempt whose claim lapsed was retried.
            await connection.execute(
                "UPDATE webhook_deliveries AS d SET state = o.state, attempts = o.attempt,"
                " due_at = coalesce(o.next_attempt_at, d.due_at),"
                " finished_at = CASE WHEN o.state <> 'pending' THEN $5::timestamptz END"
                " FROM unnest($1::bigint[], $2::int[], $3::text[], $4::timestamptz[], $6::int[])"
                " AS o (delivery_id, attempt, state, next_attempt_at, claim)"
                " WHERE d.id = o.delivery_id AND d.claims = o.claim AND d.state = 'pending'",
                columns[0],
                columns[1],
                columns[6],
                columns[7],
                now(),
                columns[8],
            )

    async def purge_deliveries(self, *, older_than: timedelta) -> int:
        # Their attempts go with them (ON DELETE CASCADE).
        async with self._connection() as connection:
            done = await connection.execute(
                "DELETE FROM webhook_deliveries WHERE finished_at < $1", now() - older_than
            )
        return int(done.split()[-1])

    async def webhook_attempts(
        self, id: str, owner: str, *, limit: int
    ) -> list[RecordedAttempt] | None:
        async with self._connection() as connection:
            known = await connection.fetchval(
                "SELECT true FROM webhooks WHERE id = $1 AND owner = $2", id, owner
            )
            if not known:
                return None
            rows = await connection.fetch(
                f"SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts AS a"  # noqa: S608 - ours
                " JOIN webhook_deliveries AS d ON d.id = a.delivery_id"
                " JOIN events AS e ON e.seq = d.event_seq"
                " WHERE a.webhook_id = $1 ORDER BY a.id DESC LIMIT $2",
                id,
                limit,
            )
        return [recorded_attempt(row, _same_moment) for row in rows]

    async def count_by_status(self) -> dict[Status, int]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT status, count(*) FROM applications GROUP BY status"
            )
        return {cast(Status, status): count for status, count in rows}

    async def check(self) -> bool:
        async with self._connection() as connection:
            one = await connection.fetchval("SELECT 1")
        return bool(one == 1)

    async def _insert_batch(self, applications: list[StoredApplication]) -> list[Exception | None]:
        """Insert in one transaction.

        If the batch fails (an id already used), each is tried alone, so one
        bad create fails by itself and not the others batched with it.
        """
        try:
            async with self._connection() as connection, connection.transaction():
                await _insert(connection, applications)
            return [None] * len(applications)
        except asyncpg.UniqueViolationError as error:
            if len(applications) == 1:
                return [error]
        return [result for app in applications for result in await self._insert_batch([app])]

    async def _read_batch(self, ids: list[UUID]) -> list[str | None]:
        """The JSON of each application asked for, read in one query; None for an unknown id."""
        async with self._connection() as connection:
            rows = await connection.fetch(_JSON_BY_IDS, ids)
        found: dict[UUID, str] = {row[0]: row[1] for row in rows}
        return [found.get(id) for id in ids]

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        """A connection of the pool, timing the wait for it."""
        started = time.perf_counter()
        self._waiting += 1
        try:
            connection = await self._pool.acquire()
        finally:
            self._waiting -= 1
        self._acquired += 1
        self._acquire_seconds += time.perf_counter() - started
        try:
            yield connection
        finally:
            await self._pool.release(connection)


async def _insert(
    connection: asyncpg.pool.PoolConnectionProxy, applications: Sequence[StoredApplication]
) -> None:
    """Insert new applications and their events in the caller's transaction.

    The transaction then holds the insert lock to its commit.
    """
    await connection.execute("SELECT pg_advisory_xact_lock($1)", INSERT_ORDER_LOCK)
    await connection.execute(schema.INSERT_MANY, *schema.insert_parameters(applications))
    await _insert_events(connection, [application.id for application in applications])


async def _insert_events(
    connection: asyncpg.pool.PoolConnectionProxy, application_ids: Sequence[UUID]
) -> None:
    """The events of these applications, as they are now; the caller holds the insert lock."""
    event_ids = [new_event_id() for _ in application_ids]
    await connection.execute(schema.INSERT_EVENTS, list(application_ids), event_ids)


async def _session_kept(connection: asyncpg.Connection) -> None:
    """Release a connection as it is: asyncpg's default reset is a round trip per release.

    Nothing here leaves session state behind (no SET, LISTEN, open cursor or
    session-level lock); asyncpg still rolls back a transaction left open.
    """


def _same_moment(value: datetime) -> datetime:
    """asyncpg reads timestamptz as an aware datetime already."""
    return value


async def _listen_until_lost(connection: asyncpg.Connection, wake: Callable[[], None]) -> None:
    """Wake on every notice of :data:`EVENTS_CHANNEL`, and once now; return when the link ends."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    await connection.add_listener(EVENTS_CHANNEL, lambda *_notice: wake())
    wake()
    await lost.wait()


def _notices_unavailable(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "event_notices_unavailable", error=str(error), retry_in=round(state.upcoming_sleep, 3)
    )
