"""A webhook receiver on loopback for the tests: keeps every delivery, answers as told."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True, slots=True)
class Received:
    """One POST the receiver got, as it came, and how it answered."""

    headers: dict[str, str]
    body: str
    status: int
    at: float
    """``time.monotonic()`` when it arrived."""
    received_at: float
    """``time.time()`` when it arrived, to compare with the event's timestamp."""
    signed: bool | None = None
    """Whether its signature held on arrival for the receiver's :attr:`WebhookReceiver.secret`
    (``None`` without one)."""

    def verified(self, secret: str) -> dict[str, Any]:
        """The event, if the signature holds for ``secret`` (the library raises otherwise)."""
        event: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return event


Answer = Callable[[int], int]
"""The status to answer the n-th POST (from 1) of one event id with."""


def always(status: int) -> Answer:
    return lambda _attempt: status


class WebhookReceiver:
    """An aiohttp server on 127.0.0.1 that records each POST and answers by :attr:`answer`."""

    def __init__(self, answer: Answer | None = None, *, delay: float = 0.0) -> None:
        self.answer = answer or always(204)
        self.delay = delay
        """Seconds to wait before answering: a slow receiver."""
        self.headers: dict[str, str] = {}
        """Headers of every answer."""
        self.received: list[Received] = []
        self.in_flight = 0
        """POSTs arrived and not yet answered."""
        self.secret: str | None = None
        """When set, each POST's signature is checked as it arrives, as a receiver's would be:
        the check refuses a timestamp more than 5 minutes off, so later is too late."""
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0
        """The port it listens on (or did, once stopped): start it there again after an outage."""

    async def start(self, port: int = 0) -> str:
        """Listen on loopback (on ``port``, or any free one); return the webhook URL."""
        app = web.Application()
        app.router.add_post("/hooks/lendo", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/lendo"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of(self, event_id: str) -> list[Received]:
        """Every POST of this event, in arrival order."""
        return [r for r in self.received if r.headers.get("webhook-id") == event_id]

    def delivered(self) -> dict[str, Received]:
        """The first 2xx-answered POST of each event id."""
        first: dict[str, Received] = {}
        for received in self.received:
            if 200 <= received.status < 300:
                first.setdefault(received.headers["webhook-id"], received)
        return first

    async def wait_for(self, done: Callable[[], bool], within: float = 10.0) -> None:
        """Return once ``done()`` holds as a POST arrives or is answered; fail after ``within``."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(done)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        headers = {name.lower(): value for name, value in request.headers.items()}
        attempt = len(self.of(headers.get("webhook-id", ""))) + 1
        arrived = time.monotonic(), time.time()
        signed = None if self.secret is None else _holds(self.secret, body, headers)
        self.in_flight += 1
        async with self._arrived:
            self._arrived.notify_all()
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        status = self.answer(attempt)
        self.received.append(Received(headers, body, status, *arrived, signed))
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=status, headers=self.headers)


def _holds(secret: str, body: str, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True
