"""The API's Prometheus metrics: HTTP traffic, applications, updates and stream backlogs.

Served at ``GET /metrics`` on the API's own port; every metric is described
in docs/operations.md. HTTP requests are counted by the API's middleware; the domain
counts (created, updates, republished, dead letters) are read from the
domain objects' own counters at each scrape; applications by status and the
consumer groups' backlogs are queried just before rendering.
"""

import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import get_args

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lendo_api.applications import Applications
from lendo_api.reconciler import Reconciler
from lendo_api.redis_loss import RedisLossWatch
from lendo_api.store import ApplicationStore, Status
from lendo_api.updates import UpdateConsumer
from lendo_api.webhooks.dispatcher import WebhookDispatcher
from lendo_runtime.logs import get_logger
from lendo_runtime.metrics import Snapshot
from lendo_streams import API_GROUP, POLLER_GROUP, StreamNames
from lendo_streams.groups import GroupBacklog, group_backlog

STATUSES: tuple[Status, ...] = get_args(Status)
UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched, so that random paths add no series."""

DURATION = "lendo_api_http_request_duration_seconds"
DURATION_BUCKETS: tuple[float, ...] = tuple(Histogram.DEFAULT_BUCKETS)
"""prometheus_client's default buckets (the last is +Inf), which the histogram has always had."""
_BUCKET_LABELS = [str(bound) for bound in DURATION_BUCKETS[:-1]] + ["+Inf"]

STREAM_STARTED: "web.RequestKey[float]" = web.RequestKey("stream_started", float)
"""When a streaming handler began its stream: the request's duration counts to there."""

log = get_logger()


class ApiMetrics:
    """The instruments of one API app, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpTraffic()
        self.registry.register(Snapshot(self.http.collect))
        self.applications = Gauge(
            "lendo_api_applications",
            "Applications in the database, by status (counted at scrape).",
            ["status"],
            registry=self.registry,
        )
        self.stream_pending = Gauge(
            "lendo_stream_pending",
            "Entries delivered to a consumer of the group and not yet acknowledged.",
            ["stream", "group"],
            registry=self.registry,
        )
        self.stream_lag = Gauge(
            "lendo_stream_lag",
            "Entries of the stream not yet delivered to the group (absent where Redis "
            "cannot tell).",
            ["stream", "group"],
            registry=self.registry,
        )

    def watch(
        self,
        applications: Applications,
        updates: UpdateConsumer,
        reconciler: Reconciler,
        loss_watch: RedisLossWatch,
        dispatcher: WebhookDispatcher,
    ) -> None:
        """Expose the domain objects' own counters; called once they exist."""

        def read() -> Iterator[Metric]:
            created = CounterMetricFamily(
                "lendo_api_applications_created", "Applications created (replays not counted)."
            )
            created.add_metric([], applications.created)
            yield created
            outcomes = CounterMetricFamily(
                "lendo_api_updates",
                "Final statuses read from the update stream, by what they did: applied (the "
                "application was pending), unchanged (already final), unknown (no such id).",
                labels=["outcome"],
            )
            stats = updates.stats
            for outcome, count in (
                ("applied", stats.applied),
                ("unchanged", stats.unchanged),
                ("unknown", stats.unknown),
            ):
                outcomes.add_metric([outcome], count)
            yield outcomes
            taken_over = CounterMetricFamily(
                "lendo_api_updates_taken_over",
                "Update entries another consumer left unacknowledged (a replica that died), "
                "taken over and handled here.",
            )
            taken_over.add_metric([], stats.taken_over)
            yield taken_over
            dead = CounterMetricFamily(
                "lendo_api_dead_letters", "Update entries that were not valid, dead-lettered."
            )
            dead.add_metric([], stats.dead_lettered)
            yield dead
            republished = CounterMetricFamily(
                "lendo_api_reconciler_published",
                "Applications the outbox sweep published: never published, or gone quiet.",
            )
            republished.add_metric([], reconciler.published)
            yield republished
            rounds = CounterMetricFamily(
                "lendo_api_reconciler_rounds",
                "Rounds of the outbox sweep and key purge finished; flat means stuck.",
            )
            rounds.add_metric([], reconciler.rounds)
            yield rounds
            losses = CounterMetricFamily(
                "lendo_api_redis_data_losses",
                "Times this process found Redis had lost its data (the generation key gone) "
                "and published every pending application again.",
            )
            losses.add_metric([], loss_watch.losses)
            yield losses
            looks = CounterMetricFamily(
                "lendo_api_redis_loss_checks",
                "Looks for a Redis data loss finished, answered or not; flat means stuck.",
            )
            looks.add_metric([], loss_watch.looks)
            yield looks
            attempts = CounterMetricFamily(
                "lendo_api_webhook_attempts",
                "Webhook delivery attempts this process made, by outcome: delivered (2xx), "
                "retried (failed, attempted again later), failed (failed the last retry: "
                "the delivery is given up).",
                labels=["outcome"],
            )
            for outcome in ("delivered", "retried", "failed"):
                attempts.add_metric([outcome], dispatcher.stats.attempts[outcome])
            yield attempts
            seconds = CounterMetricFamily(
                "lendo_api_webhook_attempt_seconds",
                "Time this process's webhook attempts took, from sending to the answer or error.",
            )
            seconds.add_metric([], dispatcher.stats.seconds)
            yield seconds
            dispatch_rounds = CounterMetricFamily(
                "lendo_api_webhook_dispatch_rounds",
                "Looks of this process's webhook dispatcher for due deliveries; flat means stuck.",
            )
            dispatch_rounds.add_metric([], dispatcher.stats.rounds)
            yield dispatch_rounds

        self.registry.register(Snapshot(read))

    async def refresh(self, store: ApplicationStore, redis: "Redis", streams: StreamNames) -> None:
        """Query what is counted at scrape: applications by status and the groups' backlogs.

        A backlog Redis cannot report now is left out of the scrape rather than
        shown stale; the database belongs to this process, so its failure fails
        the scrape.
        """
        counts = await store.count_by_status()
        for status in STATUSES:
            self.applications.labels(status).set(counts.get(status, 0))
        backlogs: dict[tuple[str, str], GroupBacklog | None] = {}
        for stream, group in ((streams.updates, API_GROUP), (streams.applications, POLLER_GROUP)):
            try:
                backlogs[stream, group] = await group_backlog(redis, stream, group)
            except RedisError as error:
                log.warning("metrics_backlog_failed", stream=stream, error=str(error))
        self.stream_pending.clear()
        self.stream_lag.clear()
        for (stream, group), backlog in backlogs.items():
            if backlog is None:
                continue
            self.stream_pending.labels(stream, group).set(backlog.pending)
            if backlog.lag is not None:
                self.stream_lag.labels(stream, group).set(backlog.lag)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        """Count an answered request by its route template, method and status, and its time."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED_ROUTE
        self.http.observe(route, request.method, status, seconds)


class _Timings:
    """One series of the duration histogram: counts per bucket (not cumulative), sum, start."""

    __slots__ = ("buckets", "created", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.sum = 0.0
        self.created = time.time()


class _Series:
    """One series of the request counter, and the histogram series its requests are timed in."""

    __slots__ = ("count", "created", "timings")

    def __init__(self, timings: _Timings) -> None:
        self.count = 0
        self.created = time.time()
        self.timings = timings


class HttpTraffic:
    """The HTTP request counter and duration histogram, kept as plain numbers.

    A request adds to a few ints and a float; the Prometheus families are built
    only at scrape: prometheus_client's instruments take a lock and walk their
    buckets in Python for every request (docs/performance.md). The exposition
    is the one a ``Counter`` and a ``Histogram`` (default buckets) with these
    names and labels render, ``_created`` series included.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._timings: dict[tuple[str, str], _Timings] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((route, method, status))
        if series is None:
            series = self._add(route, method, status)
        series.count += 1
        timings = series.timings
        # The first bucket whose upper bound is >= seconds, as Histogram.observe counts.
        timings.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1
        timings.sum += seconds

    def _add(self, route: str, method: str, status: int) -> _Series:
        timings = self._timings.get((route, method))
        if timings is None:
            timings = self._timings[route, method] = _Timings()
        series = self._series[route, method, status] = _Series(timings)
        return series

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "lendo_api_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), series in self._series.items():
            requests.add_metric([route, method, str(status)], series.count, series.created)
        yield requests
        durations = HistogramMetricFamily(
            DURATION,
            "Time to answer an HTTP request, by route template and method.",
            labels=["route", "method"],
        )
        for (route, method), timings in self._timings.items():
            durations.add_metric(
                [route, method],
                list(zip(_BUCKET_LABELS, accumulate(timings.buckets), strict=True)),
                timings.sum,
            )
            durations.add_sample(
                f"{DURATION}_created", {"route": route, "method": method}, timings.created
            )
        yield durations
