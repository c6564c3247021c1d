"""The product as its users run it: lendo-bank-sim, lendo-api and lendo-poller as subprocesses."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lendo_local.processes import wait_for_http
from lendo_local.system import LocalSystem

TIME_SCALE = 100
"""The bank decides in 0.05-0.2 s instead of 5-20 s, and every timing of the pipeline follows."""


class Processes:
    """The three processes of ``system`` on free ports, each writing its log in its directory.

    The simulator decides 0.05 s to ``max_delay`` after a submission.
    """

    def __init__(self, system: LocalSystem, max_delay: float) -> None:
        self.system = system
        self._max_delay = max_delay

    def start(self) -> "Processes":
        """Start every process and return once each one answers."""
        bank = self.system.bank_sim("--min-delay", "0.05", "--max-delay", str(self._max_delay))
        api = self.system.api()
        # Alive is not enough: its database, Redis and update consumer must answer too.
        wait_for_http(f"{api.base_url}/readyz", service=api)
        poller = self.system.poller("lendo-poller")
        self.bank_url, self.api_url, self.poller_ops_url = (
            bank.base_url,
            api.base_url,
            poller.base_url,
        )
        return self

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        """Stop every process, each of which must exit 0; return each one's log lines."""
        codes = self.system.stop()
        assert codes == {"lendo-bank-sim": 0, "lendo-api": 0, "lendo-poller": 0}
        return {
            service.name: json_lines(service.log)
            for service in self.system.services
            if service.log is not None
        }


StartProcesses = Callable[[dict[str, str], float], Processes]
"""The ``start_processes`` fixture: ``start(env, max_delay)``."""


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log, each of which must be one JSON object."""
    lines = path.read_text().splitlines()
    assert lines, path
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) and "event" in line for line in parsed), path
    return parsed
