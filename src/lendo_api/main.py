"""The ``lendo-api`` command: serve the API until SIGTERM or SIGINT."""

import asyncio
import gc
import signal

import uvloop
from aiohttp import web

from lendo_api.app import create_app
from lendo_api.settings import ApiSettings
from lendo_runtime.logs import configure_logging, get_logger
from lendo_runtime.settings import load_settings

log = get_logger()


def main() -> None:
    """Run ``lendo-api``; invalid configuration exits 2 with one line naming the variable."""
    settings = load_settings(ApiSettings, "lendo-api")
    configure_logging(settings.log_level)
    # uvloop: the same asyncio code, with a faster event loop and transports.
    uvloop.run(serve(settings))


async def serve(settings: ApiSettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop the workers and close every resource."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        # Everything built so far lives as long as the process: frozen, a full
        # collection walks only what came after (docs/performance.md, the p99's tail).
        gc.collect()
        gc.freeze()
        log.info("api_started", url=site.name)
        await _signalled(signal.SIGTERM, signal.SIGINT)
        log.info("api_stopping")
    finally:
        await runner.cleanup()
    log.info("api_stopped")


async def _signalled(*signals: signal.Signals) -> None:
    received = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, received.set)
    try:
        await received.wait()
    finally:
        # A second signal during shutdown then acts as usual and ends the process.
        for signum in signals:
            loop.remove_signal_handler(signum)
