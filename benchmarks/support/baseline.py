"""The hello-world baseline beside the system, and the CPU time a process has used.

The system's own processes come from :mod:`lendo_local.system`; the baseline
is not one of our console scripts, so it is started here, as its own process.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lendo_local.processes import wait_for_http
from lendo_local.redis_server import free_port


@dataclass(frozen=True)
class Baseline:
    """A running hello-world server."""

    url: str
    pid: int


@contextmanager
def hello_world(workdir: Path, *args: str) -> Iterator[Baseline]:
    """Run ``python -m benchmarks.support.hello PORT *args`` until the block ends.

    Its output goes to ``hello.log`` in ``workdir``.
    """
    port = free_port()
    with (workdir / "hello.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.support.hello", str(port), *args],
            stdout=log,
            stderr=log,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/")
        yield Baseline(url, process.pid)
    finally:
        process.terminate()
        process.wait(10)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
