"""The only ways a submission entry leaves the pending list.

An entry is acknowledged in the same MULTI/EXEC transaction as the entry that
says what became of it: the update for a decided or failed application, the
dead letter for an entry that cannot be processed. Redis runs a transaction all or nothing, so
an ack never happens without its record, even if the process dies mid-call.
Every write is retried until it succeeds or is cancelled: a result that could
not be written yet is only delayed, never dropped.

The updates of applications decided at about the same time share one
transaction (a :class:`~lendo_runtime.batching.Batcher`): under load, the
poller pays one Redis round trip for many acks, not one each. An actor
cancelled while its ack waits (the poller stopping) does not take the ack
back: the shared transaction still writes it. At shutdown :meth:`Acker.drain`
lets the transactions under way finish until the grace period ends, then
cancels them; a cancelled transaction wrote all or nothing, and what it did
not write stays pending, handed back like the entries of cancelled actors.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from tenacity import RetryCallState

from lendo_poller.retries import call_retrying
from lendo_poller.settings import PollerSettings
from lendo_runtime.batching import Batcher
from lendo_runtime.logs import get_logger
from lendo_streams import POLLER_GROUP, Entry, UpdateMessage, encode
from lendo_streams.dead_letters import queue_dead_letters


@dataclass(slots=True)
class AckStats:
    """Submission entries acknowledged, by why; and Redis writes that had to be retried."""

    finished: int = 0
    completed: int = 0
    rejected: int = 0
    failed: int = 0
    """Applications the bank kept refusing as invalid, published as ``failed``."""
    dead_lettered: int = 0
    duplicates: int = 0
    write_retries: int = 0
    update_transactions: int = 0
    """Transactions that published updates: ``finished`` over this is the acks per transaction."""


class Acker:
    """Acknowledges submission entries together with the record of their outcome."""

    def __init__(self, redis: "Redis", settings: PollerSettings) -> None:
        self._redis = redis
        self._streams = settings.streams
        self._dead_letter_maxlen = settings.dead_letter_maxlen
        self._backoff = settings.backoff
        self._log = get_logger()
        self.stats = AckStats()
        self._finishes: Batcher[tuple[bytes, UpdateMessage], None] = Batcher(self._finish_batch)

    async def finish(self, entry_id: bytes, update: UpdateMessage) -> None:
        """Publish the final status (decided or failed) and acknowledge the submission entry."""
        await self._finishes.submit([(entry_id, update)])

    async def drain(self, deadline: float) -> None:
        """Let the updates already submitted commit until ``deadline`` (loop time), then give up.

        Whatever was not committed by then stays pending, to be followed again.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._finishes.drain()
        self._finishes.cancel()

    async def dead_letter(self, rejects: Sequence[tuple[Entry, str]]) -> None:
        """Move entries that cannot be processed, as they were, to the dead-letter stream."""

        def queue(pipe: Pipeline) -> None:
            queue_dead_letters(
                pipe,
                self._streams,
                self._streams.applications,
                rejects,
                maxlen=self._dead_letter_maxlen,
            )
            pipe.xack(self._streams.applications, POLLER_GROUP, *(entry.id for entry, _ in rejects))

        await self._commit(queue)
        self.stats.dead_lettered += len(rejects)
        for entry, reason in rejects:
            self._log.warning("entry_dead_lettered", entry_id=entry.id.decode(), reason=reason)

    async def drop_duplicates(self, entry_ids: Sequence[bytes]) -> None:
        """Acknowledge entries whose application another entry already carries to the end."""
        await self._commit(
            lambda pipe: pipe.xack(self._streams.applications, POLLER_GROUP, *entry_ids)
        )
        self.stats.duplicates += len(entry_ids)
        self._log.info("duplicates_acknowledged", count=len(entry_ids))

    async def _finish_batch(self, finishes: list[tuple[bytes, UpdateMessage]]) -> list[None]:
        def queue(pipe: Pipeline) -> None:
            for _, update in finishes:
                pipe.xadd(self._streams.updates, encode(update))
            pipe.xack(
                self._streams.applications, POLLER_GROUP, *(entry_id for entry_id, _ in finishes)
            )

        await self._commit(queue)
        # Counted and logged here, not by the actors: an update committed after its
        # actor was cancelled is published all the same.
        self.stats.update_transactions += 1
        self.stats.finished += len(finishes)
        for _, update in finishes:
            if update.status == "failed":
                self.stats.failed += 1
                self._log.warning(
                    "application_failed",
                    application_id=str(update.id),
                    request_id=update.request_id,
                    failure_reason=update.failure_reason,
                )
                continue
            if update.status == "completed":
                self.stats.completed += 1
            else:
                self.stats.rejected += 1
            self._log.info(
                "application_decided",
                application_id=str(update.id),
                request_id=update.request_id,
                status=update.status,
            )
        return [None] * len(finishes)

    async def _commit(self, queue: Callable[[Pipeline], object]) -> None:
        await call_retrying(
            lambda: self._execute(queue),
            retry_on=RedisError,
            wait=self._backoff,
            before_sleep=self._count_retry,
        )

    async def _execute(self, queue: Callable[[Pipeline], object]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            queue(pipe)
            await pipe.execute()

    def _count_retry(self, _state: RetryCallState) -> None:
        self.stats.write_retries += 1
