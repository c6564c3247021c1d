"""The product as its users run it: lendo-bank-sim, lendo-api and lendo-poller as subprocesses."""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import free_port

SCALED_TIMINGS = {
    "LENDO_FIRST_POLL_DELAY": "0.06",
    "LENDO_POLL_INTERVAL": "0.01",
    "LENDO_READ_BLOCK": "0.1",
    "LENDO_UPDATE_BLOCK": "0.1",
}
"""A hundredfold compression of the poller's schedule (the bank decides in 5-20 s)."""


class Processes:
    """The three processes on free ports, each writing its log to a file in ``directory``.

    The simulator decides 0.05 s to ``max_delay`` after a submission; the poller
    keeps to :data:`SCALED_TIMINGS` unless ``env`` says otherwise.
    """

    def __init__(self, directory: Path, env: Mapping[str, str], max_delay: float) -> None:
        api_port, bank_port, ops_port = free_port(), free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.bank_url = f"http://127.0.0.1:{bank_port}"
        self.poller_ops_url = f"http://127.0.0.1:{ops_port}"
        environment = {
            "LENDO_PORT": str(api_port),
            "LENDO_DB_PATH": str(directory / "lendo.sqlite3"),
            "LENDO_BANK_URL": self.bank_url,
            "LENDO_METRICS_PORT": str(ops_port),
            **SCALED_TIMINGS,
            **env,
        }
        delays = ["--min-delay", "0.05", "--max-delay", str(max_delay)]
        self.services = [
            Service(name, args, environment, directory / f"{name}.log")
            for name, args in [
                ("lendo-bank-sim", ["--port", str(bank_port), *delays]),
                ("lendo-api", []),
                ("lendo-poller", []),
            ]
        ]

    def start(self) -> "Processes":
        """Start every process and return once each one answers."""
        bank, api, poller = (service.start() for service in self.services)
        wait_for_http(f"{self.bank_url}/_sim/stats", service=bank)
        wait_for_http(f"{self.api_url}/readyz", service=api)
        wait_for_http(f"{self.poller_ops_url}/readyz", service=poller)
        return self

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        """Stop every process, each of which must exit 0; return each one's log lines."""
        codes = {service.name: service.stop() for service in self.services}
        assert codes == {"lendo-bank-sim": 0, "lendo-api": 0, "lendo-poller": 0}
        return {service.name: json_lines(service.log) for service in self.services if service.log}

    def kill(self) -> None:
        """Stop whatever still runs, without judging how it exits."""
        for service in self.services:
            service.stop()


StartProcesses = Callable[[dict[str, str], float], Processes]
"""The ``start_processes`` fixture: ``start(env, max_delay)``."""


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log, each of which must be one JSON object."""
    lines = path.read_text().splitlines()
    assert lines, path
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) and "event" in line for line in parsed), path
    return parsed
