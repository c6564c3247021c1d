"""Several ``lendo-api`` processes on one port (``LENDO_API_WORKERS``), each an API of its own.

Each worker is the same command with ``LENDO_API_WORKERS=1``, binding the port
with SO_REUSEPORT so that the kernel spreads connections over them; they share
the PostgreSQL database and Redis as replicas on separate machines do. The
parent only starts them, passes on SIGTERM and SIGINT, and when one ends
stops the others and exits as it did, so that whatever supervises the parent
(systemd, compose, Kubernetes) restarts the whole set.
"""

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from lendo_api.settings import ApiSettings
from lendo_runtime.logs import get_logger

log = get_logger()

_POLL = 0.2
"""Seconds between looks at the workers; only the parent's reaction time depends on it."""


def run_workers(settings: ApiSettings) -> int:
    """Run ``settings.api_workers`` API processes until one ends; return its exit code."""
    workers = [_start(settings, number) for number in range(1, settings.api_workers + 1)]
    log.info("api_workers_started", pids=[worker.pid for worker in workers])

    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not any(worker.poll() is not None for worker in workers):
        time.sleep(_POLL)
    [first, *_] = [worker for worker in workers if worker.returncode is not None]
    if not stopping:
        # One ended by itself: stop the others, once (they are already stopping otherwise).
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
    codes = [_exit_code(worker.wait()) for worker in workers]
    log.info("api_workers_stopped", first_pid=first.pid, exit_codes=codes)
    return _exit_code(first.returncode) or max(codes)


def _start(settings: ApiSettings, number: int) -> "subprocess.Popen[bytes]":
    env = {
        **os.environ,
        "LENDO_API_WORKERS": "1",
        # One consumer per process, also where the name was given for the whole set.
        "LENDO_CONSUMER_NAME": f"{settings.consumer_name}-w{number}",
    }
    # A session of its own: a terminal's Ctrl-C reaches the parent alone, which passes it
    # on once (a second signal would cut a worker's graceful stop short).
    return subprocess.Popen(
        [sys.executable, "-m", "lendo_api.main"], env=env, start_new_session=True
    )


def _exit_code(returncode: int) -> int:
    """As a shell reports it: 128 + the signal for a process a signal ended."""
    return 128 - returncode if returncode < 0 else returncode
