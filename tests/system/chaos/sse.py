"""A client of ``GET /api/events`` (server-sent events) that loses its connection now and then.

:class:`EventFollower` reads the stream from the log's start, drops the
connection after a random number of events (and loses it whenever the API
dies) and reconnects with ``Last-Event-ID``, as a browser's EventSource does;
the chaos audit compares what it got with :func:`event_log`.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

DROP_AFTER_MOST = 40
"""The follower drops its connection after 1 to this many events."""
RECONNECT_DELAY = 0.05


@dataclass(frozen=True, slots=True)
class StreamedEvent:
    """One event of the stream: its ``id:`` (the log's cursor), ``event:`` and ``data:``."""

    cursor: int
    type: str
    data: str


async def streamed_events(response: aiohttp.ClientResponse) -> AsyncIterator[StreamedEvent]:
    """The events of a ``text/event-stream`` response as they arrive; comments (pings) skipped.

    An event is complete at its blank line: one cut short by a lost
    connection is not yielded, as an EventSource would not dispatch it.
    """
    fields: dict[str, list[str]] = {}
    async for raw in response.content:
        line = raw.decode().removesuffix("\n").removesuffix("\r")
        if not line:
            if "data" in fields:
                yield StreamedEvent(
                    int(fields["id"][-1]), fields["event"][-1], "\n".join(fields["data"])
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))


async def event_log(http: aiohttp.ClientSession, api_url: str) -> list[StreamedEvent]:
    """The whole log as the stream sends it: from cursor 0, ending once caught up."""
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            params = {"after": "0", "follow": "false"}
            async with http.get(f"{api_url}/api/events", params=params) as response:
                if response.status == 200:
                    return [event async for event in streamed_events(response)]
        await asyncio.sleep(0.1)


class EventFollower:
    """Follows the stream from the log's start until stopped, reconnecting after every loss.

    ``api_url(n)`` is the API of the n-th connection (from 0): replicas may
    take turns, since any of them resumes from the cursor.
    """

    def __init__(self, api_url: Callable[[int], str], *, seed: int) -> None:
        self.events: list[StreamedEvent] = []
        self.connections = 0
        self._api_url = api_url
        self._random = random.Random(seed)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="chaos-sse-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def caught_up(self, cursor: int) -> None:
        """Return once the follower has the event at ``cursor``; raise what stopped it, if any."""
        assert self._task is not None
        while not self.events or self.events[-1].cursor < cursor:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the follower stopped")
            await asyncio.sleep(0.05)

    async def _follow(self) -> None:
        # No overall timeout: a stream lasts as long as the client wants.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=1)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    await self._read_once(http)
                await asyncio.sleep(RECONNECT_DELAY)

    async def _read_once(self, http: aiohttp.ClientSession) -> None:
        """One connection: from the last event received, until dropped on purpose or lost."""
        url = f"{self._api_url(self.connections)}/api/events"
        self.connections += 1
        # Like an EventSource: the same URL each time, the cursor in Last-Event-ID once known.
        headers = {"Last-Event-ID": str(self.events[-1].cursor)} if self.events else {}
        drop_after = self._random.randint(1, DROP_AFTER_MOST)
        async with http.get(url, params={"after": "0"}, headers=headers) as response:
            if response.status != 200:
                return
            async for event in streamed_events(response):
                self.events.append(event)
                drop_after -= 1
                if not drop_after:
                    response.close()
                    return
