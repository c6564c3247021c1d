"""The poller's Prometheus metrics: actors, bank requests and what became of the entries.

Counts the poller and the bank client already keep (``stats``) are read at
each scrape; the bank client reports each request's duration to
:meth:`PollerMetrics.bank_request_timed`. Every metric is described in
docs/operations.md.
"""

from collections.abc import Iterator
from dataclasses import asdict

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from lendo_poller.bank import BankClient
from lendo_poller.poller import Poller
from lendo_runtime.metrics import Snapshot


class PollerMetrics:
    """The instruments of one poller process, on a registry of its own.

    Create it first, give :meth:`bank_request_timed` to the bank client as its
    ``on_request``, then :meth:`watch` the poller and the client once they exist.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._bank_duration = Histogram(
            "lendo_poller_bank_request_duration_seconds",
            "Time from sending a bank request to its answer or failure, by HTTP method "
            "(POST: submission, GET: job status).",
            ["method"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "lendo_poller_event_loop_lag_seconds",
            "How much later than asked a 50 ms timer fired: time the event loop, shared by "
            "every actor, was held.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        # One child per method, looked up once: labels() takes a lock and builds a key.
        self._bank_durations: dict[str, Histogram] = {}

    def watch(self, poller: Poller, bank: BankClient) -> None:
        """Expose the poller's and the bank client's own counts."""

        def read() -> Iterator[Metric]:
            in_flight = GaugeMetricFamily(
                "lendo_poller_in_flight", "Actors running: applications followed at the bank now."
            )
            in_flight.add_metric([], poller.in_flight)
            yield in_flight
            requests = CounterMetricFamily(
                "lendo_poller_bank_requests",
                "Bank requests by outcome: accepted, already_known, invalid (submissions); "
                "pending, decided, not_found, unknown_status (job queries); unavailable "
                "(either, to retry).",
                labels=["outcome"],
            )
            for outcome, count in asdict(bank.stats).items():
                requests.add_metric([outcome], count)
            yield requests
            stats = poller.stats
            finished = CounterMetricFamily(
                "lendo_poller_applications_finished",
                "Applications whose final status was published, by status: the bank's "
                "decision (completed, rejected), or failed (refused as invalid).",
                labels=["status"],
            )
            finished.add_metric(["completed"], stats.completed)
            finished.add_metric(["rejected"], stats.rejected)
            finished.add_metric(["failed"], stats.failed)
            yield finished
            for name, documentation, value in (
                (
                    "lendo_poller_dead_letters",
                    "Submission entries moved to the dead-letter stream.",
                    stats.dead_lettered,
                ),
                (
                    "lendo_poller_duplicates",
                    "Submission entries acknowledged as duplicates of an application in flight.",
                    stats.duplicates,
                ),
                (
                    "lendo_poller_entries_taken_over",
                    "Entries taken over from consumers presumed dead: without a heartbeat, "
                    "or (XAUTOCLAIM) idle for claim_idle.",
                    poller.taken_over,
                ),
                (
                    "lendo_poller_update_transactions",
                    "Redis transactions that published updates and acknowledged their entries; "
                    "decided applications share one under load.",
                    stats.update_transactions,
                ),
                (
                    "lendo_poller_redis_write_retries",
                    "Redis transactions (update and ack, dead letter) retried after a failure.",
                    stats.write_retries,
                ),
            ):
                counter = CounterMetricFamily(name, documentation)
                counter.add_metric([], value)
                yield counter

        self.registry.register(Snapshot(read))

    def bank_request_timed(self, method: str, seconds: float) -> None:
        """Record one bank request: its HTTP method and the seconds to its answer or failure."""
        histogram = self._bank_durations.get(method)
        if histogram is None:
            histogram = self._bank_durations[method] = self._bank_duration.labels(method)
        histogram.observe(seconds)
