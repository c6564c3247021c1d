"""The API's periodic sweep: publish what creation could not, and what went quiet.

The same sweep forgets what ages out: expired idempotency keys, finished webhook deliveries.
"""

from collections.abc import Awaitable
from datetime import timedelta

from redis.exceptions import RedisError

from lendo_api.publisher import SubmissionPublisher
from lendo_api.store import ApplicationStore
from lendo_api.timestamps import now
from lendo_runtime.logs import get_logger
from lendo_runtime.stopping import StopSignal

log = get_logger()


class Reconciler:
    """Publishes pending applications that were never published or have gone quiet.

    Never published: Redis was down at creation, or the API died between the
    commit and the XADD. Quiet: published more than ``republish_after`` ago and
    still pending, because Redis lost the entry or no poller finished it.

    Each round also purges idempotency keys older than ``keep_keys_for``
    (the store already ignores them, so purging late is harmless), and
    webhook deliveries finished more than ``keep_deliveries_for`` ago (none
    when ``None``).
    """

    def __init__(
        self,
        store: ApplicationStore,
        publisher: SubmissionPublisher,
        *,
        interval: float,
        republish_after: float,
        batch: int,
        keep_keys_for: timedelta,
        keep_deliveries_for: timedelta | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._interval = interval
        self._republish_after = timedelta(seconds=republish_after)
        self._batch = batch
        self._keep_keys_for = keep_keys_for
        self._keep_deliveries_for = keep_deliveries_for
        self._stop = StopSignal()
        self.published = 0
        """Applications the sweeps published (again) since start, for metrics."""
        self.rounds = 0
        """Rounds (sweep, then purge) finished since start, for metrics: a stuck sweep stops it."""

    async def run(self) -> None:
        """Sweep every ``interval`` until :meth:`stop`; a full batch sweeps again at once."""
        while not self._stop.is_set():
            published = await _logging_failures(self.sweep(), "outbox_sweep_failed")
            # Apart from the outbox, so that keys expire even while Redis is down.
            await _logging_failures(self.purge(), "idempotency_purge_failed")
            await _logging_failures(self.purge_deliveries(), "delivery_purge_failed")
            self.rounds += 1
            if published < self._batch:
                await self._stop.sleep(self._interval)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the sweep in hand."""
        self._stop.set()

    async def purge(self) -> int:
        """Forget expired idempotency keys; return how many."""
        purged = await self._store.purge_idempotency_keys(older_than=self._keep_keys_for)
        if purged:
            log.info("idempotency_keys_purged", count=purged)
        return purged

    async def purge_deliveries(self) -> int:
        """Forget deliveries finished more than ``keep_deliveries_for`` ago; return how many."""
        if self._keep_deliveries_for is None:
            return 0
        purged = await self._store.purge_deliveries(older_than=self._keep_deliveries_for)
        if purged:
            log.info("webhook_deliveries_purged", count=purged)
        return purged

    async def republish_pending(self) -> int:
        """Publish every application pending now, a batch at a time; return how many.

        For when Redis lost its data: pending applications published before
        now are all due at once, not after ``republish_after``.
        """
        since = now()
        republished = 0
        while True:
            published = await self._publish_due(older_than=now() - since)
            republished += published
            if published < self._batch:
                return republished

    async def sweep(self) -> int:
        """Publish one batch of due applications; return how many."""
        published = await self._publish_due(older_than=self._republish_after)
        if published:
            log.info("outbox_published", count=published)
        return published

    async def _publish_due(self, *, older_than: timedelta) -> int:
        """Publish one batch of pending applications quiet for ``older_than``; return how many."""
        due = await self._store.due_for_publish(older_than=older_than, limit=self._batch)
        await self._publisher.publish(due)
        self.published += len(due)
        return len(due)


async def _logging_failures(step: Awaitable[int], event: str) -> int:
    """Run one step of the sweep; a failure is logged and counts as nothing done."""
    try:
        return await step
    except RedisError as error:
        log.warning(event, error=str(error), error_type=type(error).__name__)
    except Exception:
        log.exception(event)
    return 0
