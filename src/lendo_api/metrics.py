"""The API's Prometheus metrics: HTTP traffic, applications, updates and stream backlogs.

Served at ``GET /metrics`` on the API's own port; every metric is described
in docs/operations.md. HTTP requests are counted by the API's middleware; the domain
counts (created, updates, republished, dead letters) are read from the
domain objects' own counters at each scrape; applications by status and the
consumer groups' backlogs are queried just before rendering.
"""

from collections.abc import Iterator
from typing import get_args

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lendo_api.applications import Applications
from lendo_api.reconciler import Reconciler
from lendo_api.store import ApplicationStore, Status
from lendo_api.updates import UpdateConsumer
from lendo_streams import API_GROUP, POLLER_GROUP, StreamNames
from lendo_streams.logs import get_logger
from lendo_streams.metrics import GroupBacklog, Snapshot, group_backlog

STATUSES: tuple[Status, ...] = get_args(Status)
UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched, so that random paths add no series."""

log = get_logger()


class ApiMetrics:
    """The instruments of one API app, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "lendo_api_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "lendo_api_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self._bound: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
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
        self, applications: Applications, updates: UpdateConsumer, reconciler: Reconciler
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
        for stream, group in ((streams.updates, API_GROUP), (streams.submissions, POLLER_GROUP)):
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
        count, duration = self._children(route, request.method, status)
        count.inc()
        duration.observe(seconds)

    def _children(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter's and duration's series for these labels, looked up once.

        ``labels()`` builds and checks its key on every call, a measurable share
        of a small request; the series are few (routes x methods x statuses).
        """
        key = (route, method, status)
        children = self._bound.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route, method),
            )
            self._bound[key] = children
        return children
