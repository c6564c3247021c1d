"""Handing applications to the pollers through the submission stream."""

from collections.abc import Sequence

from redis.asyncio import Redis

from lendo_api.store import ApplicationStore, StoredApplication
from lendo_runtime.batching import Batcher
from lendo_streams import SubmissionMessage, encode


class SubmissionPublisher:
    """XADDs applications to the submission stream, then records them as published.

    ``published_at`` is set only after Redis accepted every entry, so a failure
    at any step leaves the applications to the reconciler, which publishes them
    again. Publishing twice is safe: the pollers treat a repeated submission as
    the same application.

    Concurrent publishes share one pipeline and one ``mark_published``: under
    load, a create costs a share of a Redis round trip and of a transaction.
    """

    def __init__(self, redis: Redis, stream: str, store: ApplicationStore) -> None:
        self._redis = redis
        self._stream = stream
        self._store = store
        self._batches: Batcher[StoredApplication, None] = Batcher(self._publish_batch)

    async def publish(
        self, applications: Sequence[StoredApplication], *, give_up_after: float | None = None
    ) -> None:
        """Publish ``applications``; with ``give_up_after``, stop waiting after so many seconds.

        Giving up raises :class:`TimeoutError`; the batch under way still finishes.
        """
        if applications:
            await self._batches.submit(applications, give_up_after=give_up_after)

    async def _publish_batch(self, applications: list[StoredApplication]) -> list[None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for application in applications:
                pipe.xadd(self._stream, encode(_submission(application)))
            await pipe.execute()
        await self._store.mark_published([application.id for application in applications])
        return [None] * len(applications)


def _submission(application: StoredApplication) -> SubmissionMessage:
    return SubmissionMessage(
        id=application.id,
        first_name=application.first_name,
        last_name=application.last_name,
        request_id=application.request_id,
    )
