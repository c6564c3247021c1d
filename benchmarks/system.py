"""The processes a benchmark runs against: Redis, bank simulator, API, pollers, baseline.

Each is a separate OS process, started as ``lendo-local`` and the tests start
them, with logs in a temporary directory that is kept when a process fails.
"""

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import EmbeddedRedis, free_port


class System:
    """Processes started for one benchmark run; everything stops when the ``with`` ends."""

    def __init__(self, stack: ExitStack, workdir: Path, redis_url: str) -> None:
        self._stack = stack
        self.workdir = workdir
        self.redis_url = redis_url
        self.db_path = workdir / "lendo.sqlite3"
        self.services: list[Service] = []

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment of a lendo process of this system."""
        return {
            "LENDO_REDIS_URL": self.redis_url,
            "LENDO_DB_PATH": str(self.db_path),
            **(extra or {}),
        }

    def bank_sim(self, *args: str) -> str:
        """Start the simulator with ``args``; return its URL."""
        port = free_port()
        service = self.start("lendo-bank-sim", ["--port", str(port), *args], {})
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/_sim/stats", service=service)
        return url

    def api(self, env: Mapping[str, str] | None = None) -> str:
        """Start ``lendo-api``; return its URL."""
        port = free_port()
        service = self.start("lendo-api", [], {"LENDO_PORT": str(port), **(env or {})})
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", service=service)
        return url

    def poller(self, name: str, env: Mapping[str, str]) -> Service:
        return self.start("lendo-poller", [], {"LENDO_CONSUMER_NAME": name, **env})

    def hello(self, *args: str) -> tuple[str, int]:
        """Start the baseline hello-world server with ``args``; return its URL and pid."""
        port = free_port()
        log = (self.workdir / "hello.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.hello", str(port), *args], stdout=log, stderr=log
        )
        log.close()
        self._stack.callback(_terminate, process)
        wait_for_http(f"http://127.0.0.1:{port}/")
        return f"http://127.0.0.1:{port}", process.pid

    def start(self, name: str, args: list[str], env: Mapping[str, str]) -> Service:
        service = Service(name, args, self.env(env), self.workdir / f"{name}.log").start()
        self._stack.callback(service.stop)
        self.services.append(service)
        return service

    def pid(self, name: str) -> int:
        """Process id of the first service started as ``name``."""
        [process] = [s.process for s in self.services if s.name == name][:1]
        assert process is not None
        return process.pid


@contextmanager
def running_system() -> Iterator[System]:
    """A fresh Redis and working directory; every process started in it stops at the end."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lendo-bench-")))
        redis = stack.enter_context(EmbeddedRedis())
        yield System(stack, workdir, redis.url)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _terminate(process: "subprocess.Popen[bytes]") -> None:
    process.terminate()
    process.wait(10)
