"""The poller's small HTTP server for orchestrators and scrapers: health and metrics.

The poller serves no API, so this is its only listener: ``/healthz`` (the
process's event loop answers), ``/readyz`` (Redis answers PING and the
poller's loop is running) and ``/metrics``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from redis.asyncio import Redis

from lendo_poller.metrics import PollerMetrics
from lendo_poller.poller import Poller
from lendo_runtime import probes
from lendo_runtime.metrics import metrics_handler


def create_ops_app(poller: Poller, redis: "Redis", metrics: PollerMetrics) -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def loop_running() -> bool:
        return poller.running

    async def readiness(_request: web.Request) -> web.Response:
        return await probes.readiness(
            {"redis": probes.redis_answers(redis), "poller_loop": loop_running}
        )

    app = web.Application()
    app.router.add_get("/healthz", health, allow_head=False)
    app.router.add_get("/readyz", readiness, allow_head=False)
    app.router.add_get("/metrics", metrics_handler(metrics.registry), allow_head=False)
    return app


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port`` while the block runs; yield the port (chosen if 0)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        # Every address of a host name shares the one port.
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
