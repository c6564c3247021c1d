"""The only ways a submission entry leaves the pending list.

An entry is acknowledged in the same MULTI/EXEC transaction as the entry that
says what became of it: the update for a decided application, the dead letter
for one that cannot be processed. Redis runs a transaction all or nothing, so
an ack never happens without its record, even if the process dies mid-call.
Every write is retried until it succeeds or the caller is cancelled: a result
that could not be written yet is only delayed, never dropped.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from lendo_poller.settings import PollerSettings
from lendo_streams import POLLER_GROUP, Entry, UpdateMessage, encode

REASON_FIELD = b"reason"
ENTRY_ID_FIELD = b"entry_id"
SOURCE_STREAM_FIELD = b"source_stream"
"""Where a replay (``lendo-dead-letters replay``) puts the entry back."""


@dataclass(slots=True)
class AckStats:
    """Submission entries acknowledged, by why; and Redis writes that had to be retried."""

    finished: int = 0
    completed: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    write_retries: int = 0


class Acker:
    """Acknowledges submission entries together with the record of their outcome."""

    def __init__(self, redis: "Redis", settings: PollerSettings) -> None:
        self._redis = redis
        self._streams = settings.streams
        self._backoff = settings.backoff
        self._log = structlog.stdlib.get_logger(__name__)
        self.stats = AckStats()

    async def finish(self, entry_id: bytes, update: UpdateMessage) -> None:
        """Publish the bank's final status and acknowledge the submission entry."""

        def queue(pipe: Pipeline) -> None:
            pipe.xadd(self._streams.updates, encode(update))
            pipe.xack(self._streams.submissions, POLLER_GROUP, entry_id)

        await self._commit(queue)
        self.stats.finished += 1
        if update.status == "completed":
            self.stats.completed += 1
        else:
            self.stats.rejected += 1

    async def dead_letter(self, rejects: Sequence[tuple[Entry, str]]) -> None:
        """Move entries that cannot be processed, as they were, to the dead-letter stream."""

        def queue(pipe: Pipeline) -> None:
            for entry, reason in rejects:
                fields: dict[FieldT, EncodableT] = dict(entry.fields.items())
                fields[REASON_FIELD] = reason.encode()
                fields[ENTRY_ID_FIELD] = entry.id
                fields[SOURCE_STREAM_FIELD] = self._streams.submissions.encode()
                pipe.xadd(self._streams.dead_letters, fields)
            pipe.xack(self._streams.submissions, POLLER_GROUP, *(entry.id for entry, _ in rejects))

        await self._commit(queue)
        self.stats.dead_lettered += len(rejects)
        for entry, reason in rejects:
            self._log.warning("entry_dead_lettered", entry_id=entry.id.decode(), reason=reason)

    async def drop_duplicates(self, entry_ids: Sequence[bytes]) -> None:
        """Acknowledge entries whose application another entry already carries to the end."""
        await self._commit(
            lambda pipe: pipe.xack(self._streams.submissions, POLLER_GROUP, *entry_ids)
        )
        self.stats.duplicates += len(entry_ids)
        self._log.info("duplicates_acknowledged", count=len(entry_ids))

    async def _commit(self, queue: Callable[[Pipeline], object]) -> None:
        # The first attempt goes without tenacity, as an actor's bank requests
        # do (Actors._call): an AsyncRetrying is a reference cycle that only the
        # garbage collector frees, and nearly every write succeeds at once.
        try:
            await self._execute(queue)
            return
        except RedisError:
            self.stats.write_retries += 1
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RedisError),
            wait=self._backoff,
            before_sleep=self._count_retry,
            reraise=True,
        )
        await retrying(self._execute, queue)

    async def _execute(self, queue: Callable[[Pipeline], object]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            queue(pipe)
            await pipe.execute()

    def _count_retry(self, _state: RetryCallState) -> None:
        self.stats.write_retries += 1
