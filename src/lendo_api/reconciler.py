"""The outbox sweep: publish what creation could not, and what went quiet."""

from datetime import timedelta

import structlog
from redis.exceptions import RedisError

from lendo_api.publisher import SubmissionPublisher
from lendo_api.stopping import StopSignal
from lendo_api.store import ApplicationStore

log = structlog.stdlib.get_logger(__name__)


class Reconciler:
    """Publishes pending applications that were never published or have gone quiet.

    Never published: Redis was down at creation, or the API died between the
    commit and the XADD. Quiet: published more than ``republish_after`` ago and
    still pending, because Redis lost the entry or no poller finished it.
    """

    def __init__(
        self,
        store: ApplicationStore,
        publisher: SubmissionPublisher,
        *,
        interval: float,
        republish_after: float,
        batch: int,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._interval = interval
        self._republish_after = timedelta(seconds=republish_after)
        self._batch = batch
        self._stop = StopSignal()

    async def run(self) -> None:
        """Sweep every ``interval`` until :meth:`stop`; a full batch sweeps again at once."""
        while not self._stop.is_set():
            try:
                published = await self.sweep()
            except RedisError as error:
                log.warning(
                    "outbox_sweep_failed", error=str(error), error_type=type(error).__name__
                )
                published = 0
            except Exception:
                log.exception("outbox_sweep_failed")
                published = 0
            if published < self._batch:
                await self._stop.sleep(self._interval)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the sweep in hand."""
        self._stop.set()

    async def sweep(self) -> int:
        """Publish one batch of due applications; return how many."""
        due = await self._store.due_for_publish(older_than=self._republish_after, limit=self._batch)
        await self._publisher.publish(due)
        if due:
            log.info("outbox_published", count=len(due))
        return len(due)
