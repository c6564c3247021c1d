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
def hello_world(
    workdir: Path, *args: str, module: str = "benchmarks.support.hello", ready: str = "/"
) -> Iterator[Baseline]:
    """Run ``python -m <module> PORT *args`` (hello-world) until the block ends.

    Ready once ``ready`` answers; its output goes to ``<last part of module>.log`` in ``workdir``.
    """
    port = free_port()
    with (workdir / f"{module.rsplit('.', 1)[-1]}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(port), *args],
            stdout=log,
            stderr=log,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}{ready}")
        yield Baseline(url, process.pid)
    finally:
        process.terminate()
        process.wait(10)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
