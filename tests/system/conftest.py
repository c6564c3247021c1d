"""The product as its users run it, as separate processes, for the end-to-end tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from lendo_local.system import LocalSystem
from tests.system.product import TIME_SCALE, Processes, StartProcesses


@pytest.fixture
def start_processes(tmp_path: Path, redis_url: str, stream_prefix: str) -> Iterator[StartProcesses]:
    """Start the product's three processes; whatever a test leaves running is stopped after."""
    started: list[Processes] = []

    def start(env: dict[str, str], max_delay: float) -> Processes:
        system = LocalSystem(
            tmp_path,
            redis_url,
            time_scale=TIME_SCALE,
            env={"LENDO_STREAM_PREFIX": stream_prefix, **env},
        )
        processes = Processes(system, max_delay)
        started.append(processes)
        return processes.start()

    yield start
    for processes in started:
        processes.system.stop()
