"""What tests of every group share beyond fixtures."""

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse, web

from lendo_api.app_keys import RECONCILER, REDIS_LOSS_WATCH


async def started_up(app: web.Application) -> None:
    """Wait for the API's first outbox sweep and its first look for a Redis data loss."""
    async with asyncio.timeout(10):
        # Counters, not events, are what the app keeps of its rounds.
        while app[RECONCILER].rounds == 0 or app[REDIS_LOSS_WATCH].looks == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def parse_stream(text: str) -> list[dict[str, Any]]:
    """The events of a text/event-stream body: each one's id, event and data (parsed)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if lines:
            fields = dict(line.split(": ", 1) for line in lines)
            events.append({**fields, "data": json.loads(fields["data"])})
    return events


async def next_event(response: ClientResponse) -> dict[str, Any] | None:
    """The next event a live stream sends, skipping comments; None once the stream ends."""
    while True:
        block = await response.content.readuntil(b"\n\n")
        if not block:
            return None
        events = parse_stream(block.decode())
        if events:
            [event] = events
            return event
