"""Applying the bank's final statuses from the update stream to the store."""

import asyncio
import random
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lendo_api.store import ApplicationStore, StatusChange
from lendo_runtime.logs import get_logger
from lendo_runtime.stopping import StopSignal
from lendo_streams import (
    API_GROUP,
    Entry,
    MalformedEntry,
    StreamNames,
    UpdateMessage,
    autoclaim,
    decode,
    read_group,
)
from lendo_streams.dead_letters import queue_dead_letters
from lendo_streams.messages import application_id
from lendo_streams.trimming import trim_acknowledged

FIRST_RETRY = 0.1
LONGEST_RETRY = 5.0

log = get_logger()


@dataclass(slots=True)
class UpdateStats:
    """Update entries handled since start, by what they did to the store; for metrics."""

    applied: int = 0
    unchanged: int = 0
    unknown: int = 0
    dead_lettered: int = 0
    trimmed: int = 0
    taken_over: int = 0
    """Entries handled for other consumers that left them unacknowledged (XAUTOCLAIM)."""


class UpdateConsumer:
    """Reads the update stream in the API's consumer group and applies it.

    At-least-once: a batch is acknowledged only after its transaction is
    committed, so a crash in between delivers it again, and applying an update
    twice is harmless because only a pending application changes. After a
    failure the consumer re-reads its own pending list before new entries, so
    an unacknowledged entry is never skipped; entries another consumer (a
    replica that died) left unacknowledged for ``claim_idle`` are taken over
    and handled here. Entries that are not valid
    updates go to the dead-letter stream instead of blocking the rest. Every
    ``trim_interval`` it removes the entries the group has acknowledged, which
    bounds the stream (docs/reliability.md).
    """

    def __init__(
        self,
        redis: Redis,
        store: ApplicationStore,
        streams: StreamNames,
        *,
        consumer: str,
        batch: int,
        block: float,
        trim_interval: float,
        dead_letter_maxlen: int,
        claim_idle: float,
    ) -> None:
        self._redis = redis
        self._store = store
        self._streams = streams
        self._consumer = consumer
        self._batch = batch
        # XREADGROUP BLOCK 0 would wait forever, so round up to at least 1 ms.
        self._block_ms = max(1, round(block * 1000))
        self._trim_interval = trim_interval
        self._dead_letter_maxlen = dead_letter_maxlen
        self._next_trim = 0.0
        # A live consumer acknowledges within moments, or re-reads its own entries on retry.
        self._claim_idle_ms = max(1, round(claim_idle * 1000))
        self._claim_every = claim_idle / 2
        self._next_claim = 0.0
        self._stop = StopSignal()
        self.stats = UpdateStats()

    async def run(self) -> None:
        """Consume until :meth:`stop`; failures are logged and retried with backoff."""
        own_pending = True
        retry = FIRST_RETRY
        while not self._stop.is_set():
            try:
                handled = await self._consume_once(own_pending=own_pending)
            except Exception as error:
                if isinstance(error, RedisError):
                    log.warning(
                        "updates_failed",
                        error=str(error),
                        error_type=type(error).__name__,
                        retry_in=retry,
                    )
                else:
                    log.exception("updates_failed", retry_in=retry)
                own_pending = True
                # Jitter keeps several API processes from retrying in lockstep.
                await self._stop.sleep(random.uniform(retry / 2, retry))
                retry = min(retry * 2, LONGEST_RETRY)
                continue
            retry = FIRST_RETRY
            if own_pending and not handled:
                own_pending = False

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in hand (within one blocking read)."""
        self._stop.set()

    async def _consume_once(self, *, own_pending: bool) -> int:
        """Read and handle one batch (new entries, or this consumer's unacknowledged ones).

        Returns how many entries were handled.
        """
        entries = await read_group(
            self._redis,
            self._streams.updates,
            API_GROUP,
            self._consumer,
            count=self._batch,
            block_ms=None if own_pending else self._block_ms,
            own_pending=own_pending,
        )
        if entries:
            await self._handle(entries)
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_claim:
            await self._take_over()
            self._next_claim = loop.time() + self._claim_every
        if loop.time() >= self._next_trim:
            # The reader trims: it alone knows what has been acknowledged.
            self.stats.trimmed += await trim_acknowledged(self._redis, self._streams.updates)
            self._next_trim = loop.time() + self._trim_interval
        return len(entries)

    async def _take_over(self) -> None:
        """Handle every entry other consumers left unacknowledged for ``claim_idle``."""
        start = b"0-0"
        while True:
            start, entries = await autoclaim(
                self._redis,
                self._streams.updates,
                API_GROUP,
                self._consumer,
                min_idle_ms=self._claim_idle_ms,
                start=start,
                count=self._batch,
            )
            if entries:
                log.info("updates_taken_over", count=len(entries))
                await self._handle(entries)
                self.stats.taken_over += len(entries)
            if start == b"0-0":
                return

    async def _handle(self, entries: list[Entry]) -> None:
        changes: list[StatusChange] = []
        malformed: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                update = decode(UpdateMessage, entry.fields)
            except MalformedEntry as error:
                malformed.append((entry, str(error)))
            else:
                changes.append(
                    StatusChange(
                        update.id,
                        update.status,
                        decided_at=update.decided_at,
                        failure_reason=update.failure_reason,
                    )
                )
                # The request id that created the application: its trail ends here.
                log.info(
                    "update_received",
                    application_id=str(update.id),
                    status=update.status,
                    request_id=update.request_id,
                )
        outcome = await self._store.apply_updates(changes)
        if malformed:
            # Asked of the bank again at the next sweep, not after republish_after: the
            # update is lost, the decision is not.
            named = [found for entry, _ in malformed if (found := application_id(entry.fields))]
            await self._store.mark_unpublished(named)
            await self._dead_letter(malformed)
        await self._redis.xack(self._streams.updates, API_GROUP, *(entry.id for entry in entries))
        self.stats.applied += outcome.applied
        self.stats.unchanged += outcome.unchanged
        self.stats.unknown += outcome.unknown
        self.stats.dead_lettered += len(malformed)
        log.info(
            "updates_applied",
            applied=outcome.applied,
            unchanged=outcome.unchanged,
            unknown=outcome.unknown,
            dead_lettered=len(malformed),
        )

    async def _dead_letter(self, malformed: list[tuple[Entry, str]]) -> None:
        for entry, reason in malformed:
            log.warning("update_dead_lettered", entry_id=entry.id.decode(), reason=reason)
        async with self._redis.pipeline(transaction=False) as pipe:
            queue_dead_letters(
                pipe,
                self._streams,
                self._streams.updates,
                malformed,
                maxlen=self._dead_letter_maxlen,
            )
            await pipe.execute()
