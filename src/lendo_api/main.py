"""The ``lendo-api`` command: serve the API; ``copy-store`` and ``requeue-failed`` for operators."""

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import uvloop
from aiohttp import web

from lendo_api.app import create_app
from lendo_api.copy_store import CopyMismatch, copy_store
from lendo_api.settings import ApiSettings
from lendo_api.stores import open_store
from lendo_api.workers import run_workers
from lendo_runtime.logs import configure_logging, get_logger
from lendo_runtime.settings import load_settings

log = get_logger()


def main() -> None:
    """Run ``lendo-api``; invalid configuration exits 2 with one line naming the variable."""
    arguments = _parser().parse_args()
    settings = load_settings(ApiSettings, "lendo-api")
    configure_logging(settings.log_level)
    # yoyo narrates each step of a migration; lendo_api.migrations logs one event instead.
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    if arguments.command == "copy-store":
        raise SystemExit(_copy_store(settings.db_path, arguments.to, arguments.batch))
    if arguments.command == "requeue-failed":
        ids = None if arguments.all else arguments.ids
        raise SystemExit(asyncio.run(_requeue_failed(settings, ids)))
    if settings.api_workers > 1:
        raise SystemExit(run_workers(settings))
    # uvloop: the same asyncio code, with a faster event loop and transports.
    uvloop.run(serve(settings))


async def serve(settings: ApiSettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop the workers and close every resource."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        # Shared with the other workers on PostgreSQL; on SQLite a second process on the
        # port is refused, as it would be a second writer of the file.
        site = web.TCPSite(
            runner, settings.host, settings.port, reuse_port=settings.database_url is not None
        )
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lendo-api", description="Serve the API; configured by LENDO_* variables."
    )
    commands = parser.add_subparsers(dest="command")
    copy = commands.add_parser(
        "copy-store",
        help="copy every application and idempotency key of the SQLite file LENDO_DB_PATH "
        "into a PostgreSQL database; safe to run again, it finishes what a run left",
    )
    copy.add_argument("--to", required=True, type=_postgres_url, metavar="postgresql://...")
    copy.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    requeue = commands.add_parser(
        "requeue-failed",
        help="put failed applications back to pending once the cause is fixed; the running "
        "API hands them to the bank again",
    )
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], type=UUID, help="application ids")
    which.add_argument("--all", action="store_true", help="every failed application")
    return parser


def _postgres_url(text: str) -> str:
    if urlsplit(text).scheme not in ("postgresql", "postgres"):
        raise argparse.ArgumentTypeError("not a postgresql:// URL")
    return text


def _copy_store(source: Path, target: str, batch: int) -> int:
    """Copy, and exit 1 with one line if the target does not end up holding every row."""
    try:
        copied = copy_store(source, target, batch=batch)
    except (CopyMismatch, FileNotFoundError) as error:
        print(f"lendo-api copy-store: {error}", file=sys.stderr)
        return 1
    print(
        f"copied {copied.applications} applications, {copied.idempotency_keys} idempotency "
        f"keys, {copied.webhooks} webhooks, {copied.events} events, {copied.deliveries} "
        f"webhook deliveries and {copied.attempts} attempts from {source}; "
        "the target holds every one"
    )
    return 0


async def _requeue_failed(settings: ApiSettings, ids: list[UUID] | None) -> int:
    """Requeue, print how many and which (ids only, never names), exit 0."""
    store = await open_store(settings)
    try:
        requeued = await store.requeue_failed(ids)
    finally:
        await store.close()
    for application_id in requeued:
        print(application_id)
    print(f"requeued {len(requeued)} failed applications", file=sys.stderr)
    log.info("failed_requeued", count=len(requeued))
    return 0


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


if __name__ == "__main__":
    main()
