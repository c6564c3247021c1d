"""``lendo-local``: the whole system on one machine, no Docker needed.

Starts an embedded Redis unless ``LENDO_REDIS_URL`` is set, the bank simulator
unless ``LENDO_BANK_URL`` is set, then ``lendo-api`` and ``lendo-poller``, and
stops them all on Ctrl-C or SIGTERM. Logs of each process go to ``var/``.
"""

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import EmbeddedRedis, free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lendo-local", description=__doc__)
    parser.add_argument("--var", type=Path, default=Path("var"), help="database and log folder")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LENDO_PORT", "8080")))
    args = parser.parse_args(argv)
    args.var.mkdir(parents=True, exist_ok=True)

    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    with _redis_url() as redis_url:
        env = {
            "LENDO_REDIS_URL": redis_url,
            "LENDO_PORT": str(args.port),
            "LENDO_DB_PATH": os.environ.get("LENDO_DB_PATH", str(args.var / "lendo.sqlite3")),
        }
        services: list[Service] = []
        try:
            if "LENDO_BANK_URL" not in os.environ:
                bank_port = free_port()
                services.append(
                    Service(
                        "lendo-bank-sim", ["--port", str(bank_port)], env, args.var / "bank-sim.log"
                    ).start()
                )
                env["LENDO_BANK_URL"] = f"http://127.0.0.1:{bank_port}"
            api = Service("lendo-api", [], env, args.var / "api.log").start()
            services.append(api)
            services.append(Service("lendo-poller", [], env, args.var / "poller.log").start())
            base = f"http://127.0.0.1:{args.port}"
            wait_for_http(f"{base}/healthz", service=api)
            print(
                f"Lendo is running.\n"
                f"  API:   {base}/api/applications\n"
                f"  Docs:  {base}/api/docs\n"
                f"  Redis: {redis_url}\n"
                f"  Bank:  {env['LENDO_BANK_URL']}\n"
                f"  Logs:  {args.var}/*.log\n"
                f"Press Ctrl-C to stop.",
                flush=True,
            )
            while not stop_requested:
                if dead := [s.name for s in services if not s.running]:
                    print(f"lendo-local: {', '.join(dead)} exited; stopping", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            return 0
        finally:
            for service in reversed(services):
                service.stop()


@contextlib.contextmanager
def _redis_url() -> Iterator[str]:
    configured = os.environ.get("LENDO_REDIS_URL")
    if configured:
        yield configured
        return
    with EmbeddedRedis() as server:
        yield server.url


if __name__ == "__main__":
    raise SystemExit(main())
