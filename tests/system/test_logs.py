"""Logs of the real processes: JSON lines, one request id end to end, no personal data.

One application goes through ``lendo-api``, ``lendo-poller`` and the bank
simulator as separate processes; then every line each process wrote is read.
"""

import asyncio
import json

import aiohttp
import pytest

from tests.system.product import Processes, StartProcesses

REQUEST_ID = "ops-trace-5f3c9a"
FIRST_NAME = "Zebulon"
LAST_NAME = "Quixote-Marmaduke"
"""An applicant's name that must appear in no log line of any process."""


@pytest.fixture
def system(start_processes: StartProcesses) -> Processes:
    return start_processes({"LENDO_LOG_LEVEL": "INFO"}, 0.1)


async def test_one_request_id_follows_an_application_and_no_name_is_logged(
    system: Processes,
) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"first_name": FIRST_NAME, "last_name": LAST_NAME}
        headers = {"X-Request-ID": REQUEST_ID}
        async with http.post(
            f"{system.api_url}/api/applications", json=body, headers=headers
        ) as response:
            assert response.status == 201
            assert response.headers["X-Request-ID"] == REQUEST_ID
            application_id = (await response.json())["id"]
        async with asyncio.timeout(20):
            while True:  # until the bank's decision is recorded
                async with http.get(f"{system.api_url}/api/applications/{application_id}") as got:
                    status = (await got.json())["status"]
                if status != "pending":
                    break
                await asyncio.sleep(0.05)
        async with http.get(f"{system.poller_ops_url}/metrics") as scraped:
            assert scraped.status == 200
            poller_metrics = await scraped.text()

    logs = system.stop()

    assert f'lendo_poller_applications_finished_total{{status="{status}"}} 1.0' in poller_metrics
    for name, lines in logs.items():
        for line in lines:
            text = json.dumps(line, ensure_ascii=False)
            assert FIRST_NAME not in text, (name, line)
            assert LAST_NAME not in text, (name, line)
    traced = {
        name: [line["event"] for line in lines if line.get("request_id") == REQUEST_ID]
        for name, lines in logs.items()
    }
    # Created and its decision recorded (API), decided at the bank (the poller's actor).
    assert traced["lendo-api"] == ["application_created", "update_received"]
    assert traced["lendo-poller"] == ["application_decided"]
    decided = next(line for line in logs["lendo-poller"] if line["event"] == "application_decided")
    assert decided["application_id"] == application_id
    assert decided["status"] == status
