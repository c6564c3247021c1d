"""``lendo-local``, the README's one command: the whole system on embedded defaults."""

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lendo_local.processes import console_script, wait_for_http
from lendo_local.redis_server import free_port

STARTED = re.compile(r"API:\s+(?P<api>\S+)/api/applications.*Bank:\s+(?P<bank>\S+)", re.S)


def _json(url: str, body: dict[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback URLs printed by lendo-local
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def _refusal(url: str, body: dict[str, str]) -> Any:
    """The problem document of a POST the server refuses."""
    try:
        _json(url, body)
    except urllib.error.HTTPError as error:
        return {"status": error.code, **json.loads(error.read())}
    raise AssertionError(f"{url} accepted {body}")


def test_one_command_runs_redis_the_bank_the_api_and_the_poller_then_stops_them(
    tmp_path: Path,
) -> None:
    env = {"PATH": str(Path(console_script("lendo-local")).parent), "LENDO_LOG_LEVEL": "INFO"}
    with subprocess.Popen(
        [console_script("lendo-local"), "--var", str(tmp_path), "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as local:
        try:
            assert local.stdout is not None
            banner = "".join(local.stdout.readline() for _ in range(7))
            found = STARTED.search(banner)
            assert found, banner
            api, bank = found["api"], found["bank"]
            wait_for_http(f"{api}/readyz")

            new = {"first_name": "Ada", "last_name": "Lovelace"}
            created = _json(f"{api}/api/applications", new)
            assert _json(f"{api}/api/applications/{created['id']}")["status"] == "pending"
            # Webhooks reach receivers on this machine, and nowhere else.
            local_hook = _json(f"{api}/api/webhooks", {"url": "http://127.0.0.1:9/lendo"})
            assert local_hook["secret"].startswith("whsec_")
            refused = _refusal(f"{api}/api/webhooks", {"url": "https://lendo.invalid/lendo"})
            assert refused["status"] == 422
            assert [error["field"] for error in refused["errors"]] == ["url"]
            # The poller hands it to the simulator at once; the decision takes 5-20 s.
            deadline = time.monotonic() + 10
            while _json(f"{bank}/_sim/stats")["submissions"] == 0:
                assert time.monotonic() < deadline, "the poller never submitted the application"
                time.sleep(0.05)
        finally:
            local.send_signal(signal.SIGTERM)
            code = local.wait(30)

    assert code == 0
    assert (tmp_path / "lendo.sqlite3").exists()
    assert {log.name for log in tmp_path.glob("*.log")} == {"api.log", "poller.log", "bank-sim.log"}
