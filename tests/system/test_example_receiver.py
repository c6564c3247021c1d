"""examples/webhook_receiver.py, run as docs/api.md runs it, against a real lendo-api."""

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from lendo_local.redis_server import free_port
from tests.system.product import Processes, StartProcesses

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"


@pytest.fixture
def system(start_processes: StartProcesses) -> Processes:
    return start_processes({"LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}, 0.2)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        yield session


async def start_receiver(port: int, secret: str) -> asyncio.subprocess.Process:
    """The example as a process of its own; returns once it listens."""
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--port",
        str(port),
        env={**os.environ, "LENDO_WEBHOOK_SECRET": secret},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert await line(receiver.stdout) == f"listening on http://127.0.0.1:{port}/"
    return receiver


async def line(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    async with asyncio.timeout(10):
        return (await stream.readline()).decode().rstrip("\n")


async def test_the_example_receiver_takes_signed_deliveries_and_refuses_a_tampered_one(
    system: Processes, http: aiohttp.ClientSession
) -> None:
    api, port = system.api_url, free_port()
    hook_url = f"http://127.0.0.1:{port}/lendo"
    async with http.post(f"{api}/api/webhooks", json={"url": hook_url}) as response:
        webhook = await response.json()
    receiver = await start_receiver(port, webhook["secret"])
    try:
        body = {"first_name": "Ada", "last_name": "Lovelace"}
        async with http.post(f"{api}/api/applications", json=body) as response:
            application = await response.json()
        printed = [await line(receiver.stdout), await line(receiver.stdout)]
        async with http.get(f"{api}/api/applications/{application['id']}/events") as response:
            created, decided = events = (await response.json())["items"]

        signed = signed_copy(webhook["secret"], created)
        tampered = signed["body"].replace('"Ada"', '"Eve"')
        async with aiohttp.ClientSession() as raw:
            async with raw.post(hook_url, data=tampered, headers=signed["headers"]) as refused:
                refused_status = refused.status
            async with raw.post(hook_url, data=signed["body"], headers=signed["headers"]) as again:
                again_status = again.status
        refusal = await line(receiver.stderr)
        async with http.get(f"{api}/api/webhooks/{webhook['id']}/deliveries") as response:
            attempts = (await response.json())["items"]
    finally:
        receiver.terminate()
        await receiver.wait()
    rest = await receiver.stdout.read() if receiver.stdout else b""

    # Deliveries may arrive in any order; the decision is usually the second.
    assert sorted(printed) == sorted(
        f"{event['id']} {event['type']} {application['id']} {event['data']['status']}"
        for event in events
    )
    assert decided["type"] in {"application.completed", "application.rejected"}
    newest = {attempt["event_id"]: attempt for attempt in reversed(attempts)}
    assert {(id, a["status_code"], a["delivery_state"]) for id, a in newest.items()} == {
        (created["id"], 204, "delivered"),
        (decided["id"], 204, "delivered"),
    }
    assert (refused_status, refusal) == (400, "rejected: No matching signature found")
    # The genuine copy is a duplicate of a delivered event: taken, and not printed again.
    assert (again_status, rest) == (204, b"")


def signed_copy(secret: str, event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as a delivery signed with ``secret`` now: its body and its headers."""
    body = json.dumps(event)
    at = datetime.now(UTC)
    headers = {
        "webhook-id": event["id"],
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event["id"], at, body),
        "content-type": "application/json",
    }
    return {"body": body, "headers": headers}
