"""The dispatcher: sends the store's due webhook deliveries, and records every attempt.

Each API process runs one (docs/architecture.md, "Webhook deliveries"). It
claims due deliveries from the store, a few per webhook at a time, and sends
each as a signed POST; the store hands a delivery to one dispatcher at a time,
so replicas share the work without sending anything twice, except after a
dispatcher died mid-attempt (at least once). A new event wakes it at once
through the process's event feed; retries come due on its own timer.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp

from lendo_api.event_feed import EventFeed
from lendo_api.store import ApplicationStore
from lendo_api.timestamps import now, timestamp_text
from lendo_api.webhooks.deliveries import AttemptOutcome, DueDelivery, outcome
from lendo_api.webhooks.signing import signed_headers
from lendo_api.webhooks.targets import TargetRules
from lendo_runtime.batching import Batcher
from lendo_runtime.logs import get_logger
from lendo_runtime.stopping import StopSignal

USER_AGENT = "lendo-webhooks/1"
DRAINED_BODY = 64 * 1024
"""An answer's body up to this size is read (and ignored), so its connection is kept for reuse."""

log = get_logger()


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """How the dispatcher sends: the ``LENDO_WEBHOOK_*`` settings."""

    retry_schedule: Sequence[float]
    timeout: float
    endpoint_concurrency: int
    concurrency: int
    poll_interval: float
    claim_for: timedelta


@dataclass(slots=True)
class DispatchStats:
    """Attempts since start, by what they did: /metrics reads them."""

    attempts: Counter[str] = field(default_factory=Counter)
    """By outcome: ``delivered``, ``retried`` (failed, tried again later), ``failed`` (given up)."""
    seconds: float = 0.0
    """The time all those attempts took."""
    rounds: int = 0
    """Looks for due deliveries; flat means the dispatcher is stuck."""


class WebhookDispatcher:
    """Delivers the due deliveries of ``store`` until :meth:`stop`."""

    def __init__(
        self,
        store: ApplicationStore,
        targets: TargetRules,
        feed: EventFeed,
        settings: DispatchSettings,
    ) -> None:
        self._store = store
        self._targets = targets
        self._feed = feed
        self._settings = settings
        self._stop = StopSignal()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_webhook: Counter[str] = Counter()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._records: Batcher[AttemptOutcome, None] = Batcher(self._record)
        self.stats = DispatchStats()

    async def run(self) -> None:
        """Claim and send until stopped; then let the attempts under way end (or time out)."""
        settings = self._settings
        connector = aiohttp.TCPConnector(
            limit=settings.concurrency, resolver=self._targets.resolver()
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=settings.timeout),
            headers={"User-Agent": USER_AGENT},
        ) as session:
            watcher = asyncio.create_task(self._watch_feed(), name="lendo-webhooks-wake")
            try:
                while not self._stop.is_set():
                    claimed = await self._claim()
                    for delivery in claimed:
                        self._start(session, delivery)
                    if not claimed or len(self._in_flight) >= settings.concurrency:
                        await self._sleep()
            finally:
                watcher.cancel()
                if self._in_flight:
                    await asyncio.wait(self._in_flight)
                await self._records.drain()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _claim(self) -> list[DueDelivery]:
        settings = self._settings
        self.stats.rounds += 1
        free = settings.concurrency - len(self._in_flight)
        if free <= 0:
            return []
        busy = [id for id, n in self._per_webhook.items() if n >= settings.endpoint_concurrency]
        try:
            return await self._store.claim_deliveries(
                limit=free,
                per_webhook=settings.endpoint_concurrency,
                skip_webhooks=busy,
                claim_for=settings.claim_for,
            )
        except Exception as error:
            log.warning("webhook_claim_failed", error=str(error), error_type=type(error).__name__)
            return []

    def _start(self, session: aiohttp.ClientSession, delivery: DueDelivery) -> None:
        self._per_webhook[delivery.webhook.id] += 1
        task = asyncio.create_task(self._deliver(session, delivery))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: "asyncio.Task[None]") -> None:
        self._in_flight.discard(task)
        self._wake.set()

    def _release(self, webhook_id: str) -> None:
        """The webhook has one attempt fewer under way: the next claim may take it more."""
        self._per_webhook[webhook_id] -= 1
        if not self._per_webhook[webhook_id]:
            del self._per_webhook[webhook_id]
            self._slots.pop(webhook_id, None)
        self._wake.set()

    async def _deliver(self, session: aiohttp.ClientSession, delivery: DueDelivery) -> None:
        webhook = delivery.webhook
        slots = self._slots.setdefault(
            webhook.id, asyncio.Semaphore(self._settings.endpoint_concurrency)
        )
        try:
            async with slots:
                if self._stop.is_set():
                    return  # not attempted: the claim lapses and a running dispatcher sends it
                attempted_at = now()
                started = time.perf_counter()
                status_code, error = await self._send(session, delivery)
                duration = time.perf_counter() - started
        finally:
            # Free once its POST is over: the record is written while the webhook's next
            # deliveries are claimed and sent, not before (docs/performance.md, section 6).
            self._release(webhook.id)
        result = outcome(
            delivery,
            attempted_at=attempted_at,
            duration=duration,
            status_code=status_code,
            error=error,
            retry_schedule=self._settings.retry_schedule,
        )
        self._count(delivery, result)
        try:
            await self._records.submit([result])
        except Exception as error:
            # The claim lapses and the delivery is attempted again: at least once.
            log.warning(
                "webhook_record_failed",
                webhook_id=webhook.id,
                event_id=delivery.event_id,
                error=str(error),
                error_type=type(error).__name__,
            )

    async def _send(
        self, session: aiohttp.ClientSession, delivery: DueDelivery
    ) -> tuple[int | None, str | None]:
        """The receiver's status code, or why there is none."""
        url = delivery.webhook.url
        refusal = self._targets.refusal_at_delivery(url)
        if refusal is not None:
            return None, f"refused: {refusal}"
        try:
            headers = signed_headers(delivery.webhook, delivery.event_id, delivery.body, now())
            async with session.post(
                url, data=delivery.body.encode(), headers=headers, allow_redirects=False
            ) as response:
                length = response.content_length
                if length is not None and length <= DRAINED_BODY:
                    await response.read()
                return response.status, None
        except TimeoutError:
            return None, f"no answer within {self._settings.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return None, f"{type(error).__name__}: {error}"

    def _count(self, delivery: DueDelivery, result: AttemptOutcome) -> None:
        kind = {"delivered": "delivered", "pending": "retried", "failed": "failed"}[result.state]
        self.stats.attempts[kind] += 1
        self.stats.seconds += result.duration
        if result.state == "delivered":
            return
        fields = {
            "webhook_id": delivery.webhook.id,
            "event_id": delivery.event_id,
            "attempt": delivery.attempt,
            "status_code": result.status_code,
            "error": result.error,
        }
        if result.state == "failed":
            log.error("webhook_delivery_failed", **fields)
        else:
            assert result.next_attempt_at is not None, "a pending delivery has its next attempt"
            log.info(
                "webhook_attempt_failed",
                next_attempt_at=timestamp_text(result.next_attempt_at),
                **fields,
            )

    async def _record(self, outcomes: list[AttemptOutcome]) -> list[None]:
        await self._store.record_attempts(outcomes)
        return [None] * len(outcomes)

    async def _watch_feed(self) -> None:
        """Wake the dispatcher whenever the feed reads new events: they may have deliveries."""
        seen = self._feed.position
        while not self._feed.stopped:
            await self._feed.wait_past(seen)
            seen = self._feed.position
            self._wake.set()

    async def _sleep(self) -> None:
        """Until woken (a new event, a finished attempt, stop) or the poll interval passes."""
        try:
            async with asyncio.timeout(self._settings.poll_interval):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()
