"""Prometheus exposition, shared by every pipeline process.

Each process keeps its instruments on its own ``CollectorRegistry``, never
the library's global one, so several apps in one test process do not mix.
Counts a process already keeps (its ``stats`` objects) are read when
scraped, by a :class:`Snapshot`, rather than counted a second time; values
that need I/O (database counts, stream backlogs) are fetched by an async
refresh just before the registry is rendered.
"""

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Refresh = Callable[[], Awaitable[None]]


class Snapshot(Collector):
    """A collector whose metrics ``read()`` builds from live objects at each scrape."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()


def metrics_handler(registry: CollectorRegistry, refresh: Refresh | None = None) -> Handler:
    """A ``GET /metrics`` handler: refresh, then render in the format the scraper accepts."""

    async def metrics(request: web.Request) -> web.StreamResponse:
        if refresh is not None:
            await refresh()
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(registry), headers={"Content-Type": content_type})

    return metrics
