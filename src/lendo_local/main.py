"""``lendo-local``: the whole system on one machine, no Docker needed.

Starts an embedded Redis unless ``LENDO_REDIS_URL`` is set, the bank simulator
unless ``LENDO_BANK_URL`` is set, then ``lendo-api`` and ``lendo-poller``, and
stops them all on Ctrl-C or SIGTERM. Logs of each process go to ``var/``.
"""

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path

from lendo_local.system import running_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lendo-local", description=__doc__)
    parser.add_argument("--var", type=Path, default=Path("var"), help="database and log folder")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LENDO_PORT", "8080")))
    args = parser.parse_args(argv)

    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    env = {
        "LENDO_DB_PATH": os.environ.get("LENDO_DB_PATH", str(args.var / "lendo.sqlite3")),
        # A local run's webhooks go to receivers on this machine, and only there, so
        # trying the API (or fuzzing it) never sends a delivery elsewhere (docs/api.md).
        "LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": os.environ.get(
            "LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"
        ),
        "LENDO_WEBHOOK_ALLOWED_HOSTS": os.environ.get(
            "LENDO_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1,localhost"
        ),
    }
    with running_system(args.var, os.environ.get("LENDO_REDIS_URL") or None, env=env) as system:
        if "LENDO_BANK_URL" not in os.environ:
            system.bank_sim(log="bank-sim")
        api = system.api(port=args.port, log="api")
        system.poller(os.environ.get("LENDO_CONSUMER_NAME", socket.gethostname()), log="poller")
        print(
            f"Lendo is running.\n"
            f"  API:   {api.base_url}/api/applications\n"
            f"  Docs:  {api.base_url}/api/docs\n"
            f"  Redis: {system.redis_url}\n"
            f"  Bank:  {system.bank_url or os.environ['LENDO_BANK_URL']}\n"
            f"  Logs:  {args.var}/*.log\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )
        while not stop_requested:
            if dead := [s.name for s in system.services if not s.running]:
                print(f"lendo-local: {', '.join(dead)} exited; stopping", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
