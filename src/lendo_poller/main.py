"""The ``lendo-poller`` process: wires settings, logs, Redis and the bank to a Poller.

SIGTERM and SIGINT stop the poller, which hands its in-flight entries back to
the group; then every connection is closed and the process exits 0. While the
poller runs, its health and metrics are served on ``LENDO_METRICS_PORT``.
"""

import asyncio
import signal

import uvloop
from redis.asyncio import Redis

from lendo_poller.bank import BankClient
from lendo_poller.frozen_actors import keep_actors_frozen
from lendo_poller.loop_lag import watch_loop_lag
from lendo_poller.metrics import PollerMetrics
from lendo_poller.ops_server import create_ops_app, serving
from lendo_poller.poller import Poller
from lendo_poller.settings import PollerSettings
from lendo_runtime.logs import configure_logging, get_logger
from lendo_runtime.settings import load_settings


def main() -> None:
    """Console entry point; exits 2 with one line if the configuration is invalid."""
    settings = load_settings(PollerSettings, "lendo-poller")
    configure_logging(settings.log_level)
    # uvloop: the same asyncio code, with a faster event loop and transports.
    uvloop.run(serve(settings))


async def serve(settings: PollerSettings) -> None:
    """Run one poller until SIGTERM or SIGINT, then close what was opened here."""
    log = get_logger()
    redis = Redis.from_url(
        str(settings.redis_url),
        decode_responses=False,
        socket_connect_timeout=settings.redis_timeout,
        # A blocking XREADGROUP legitimately waits read_block for its answer.
        socket_timeout=settings.read_block + settings.redis_timeout,
    )
    metrics = PollerMetrics()
    bank = BankClient.from_settings(settings, on_request=metrics.bank_request_timed)
    poller = Poller(settings, redis, bank)
    metrics.watch(poller, bank)
    loop = asyncio.get_running_loop()
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    for signum in stop_signals:
        loop.add_signal_handler(signum, poller.stop)
    summaries = asyncio.create_task(_summarize(poller, bank, settings.summary_interval))
    lag = asyncio.create_task(watch_loop_lag(metrics.loop_lag.observe))
    frozen = asyncio.create_task(keep_actors_frozen(poller))
    try:
        ops = create_ops_app(poller, redis, metrics)
        async with serving(ops, settings.metrics_host, settings.metrics_port) as metrics_port:
            log.info(
                "poller_started",
                consumer=settings.consumer_name,
                bank_url=str(settings.bank_url),
                max_in_flight=settings.max_in_flight,
                metrics_url=f"http://{settings.metrics_host}:{metrics_port}/metrics",
            )
            await poller.run()
    finally:
        summaries.cancel()
        lag.cancel()
        frozen.cancel()
        for signum in stop_signals:
            loop.remove_signal_handler(signum)
        await bank.close()
        await redis.aclose()
    log.info("poller_stopped", finished=poller.stats.finished)


async def _summarize(poller: Poller, bank: BankClient, interval: float) -> None:
    """Log counts every ``interval``: one line, however many applications are in flight."""
    log = get_logger()
    while True:
        await asyncio.sleep(interval)
        log.info(
            "poller_summary",
            in_flight=poller.in_flight,
            finished=poller.stats.finished,
            failed=poller.stats.failed,
            dead_lettered=poller.stats.dead_lettered,
            duplicates=poller.stats.duplicates,
            redis_write_retries=poller.stats.write_retries,
            bank_unavailable=bank.stats.unavailable,
            bank_not_found=bank.stats.not_found,
        )
