"""The PostgreSQL connection pool in /metrics: its size, what is lent out, and the waits for it."""

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from lendo_api.postgres_store import PoolStats
from lendo_runtime.metrics import Snapshot


def pool_snapshot(stats: Callable[[], PoolStats]) -> Snapshot:
    """A collector of the pool's gauges and counters, read from ``stats()`` at each scrape."""

    def read() -> Iterator[Metric]:
        now = stats()
        for name, help_text, value in (
            ("lendo_api_db_pool_connections", "PostgreSQL connections open.", now.size),
            ("lendo_api_db_pool_in_use", "PostgreSQL connections lent out.", now.in_use),
            ("lendo_api_db_pool_max", "Most PostgreSQL connections the pool opens.", now.max_size),
            ("lendo_api_db_pool_waiting", "Callers waiting for a connection now.", now.waiting),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)
        yield CounterMetricFamily(
            "lendo_api_db_pool_acquired", "Connections lent since start.", value=now.acquired
        )
        yield CounterMetricFamily(
            "lendo_api_db_pool_acquire_seconds",
            "Time spent waiting for a pool connection since start.",
            value=now.acquire_seconds,
        )

    return Snapshot(read)
