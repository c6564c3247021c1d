"""``GET /api/events``: the event log as server-sent events (aiohttp-sse).

Each event goes out as ``id:`` (its cursor), ``event:`` (its type) and
``data:`` (the event's JSON, one line). A stream replays the log after its
cursor first, then sends new events as the process's :class:`EventFeed`
reads them; aiohttp-sse sends a comment line every :data:`PING_INTERVAL`
seconds meanwhile, so that proxies keep an idle stream open.
"""

import asyncio
import contextlib
import time
from uuid import UUID

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from lendo_api.event_feed import EventFeed
from lendo_api.metrics import STREAM_STARTED
from lendo_api.request_ids import HEADER as REQUEST_ID_HEADER
from lendo_api.request_ids import REQUEST_ID

PING_INTERVAL = 15.0
EVENT_STREAM = "text/event-stream"


async def stream_events(
    request: web.Request,
    feed: EventFeed,
    *,
    after: int | None,
    application_id: UUID | None,
    owner: str | None,
    follow: bool,
) -> web.StreamResponse:
    """Send the events after ``after`` (else from now on) that match, until the client leaves.

    With ``follow`` false, the stream ends once it has caught up with the log.
    """
    headers = {REQUEST_ID_HEADER: request[REQUEST_ID]}
    if request.method == "HEAD":
        # The headers a GET would send; a HEAD waits for no event.
        return web.Response(
            headers={**headers, "Cache-Control": "no-cache"}, content_type=EVENT_STREAM
        )
    end = await feed.end_of_log()
    # Without follow, the stream ends at the log's end as it is now.
    until = None if follow else end
    async with sse_response(
        request, headers=headers, sep="\n", ping_interval=PING_INTERVAL
    ) as response:
        request[STREAM_STARTED] = time.perf_counter()
        gone = asyncio.ensure_future(response.wait())
        try:
            cursor = end if after is None else after
            await _send_until_done(response, feed, gone, cursor, application_id, owner, until)
        except ConnectionResetError:
            pass  # the client left while an event was being sent: the stream is over
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
    return response


async def _send_until_done(
    response: EventSourceResponse,
    feed: EventFeed,
    gone: "asyncio.Future[None]",
    cursor: int,
    application_id: UUID | None,
    owner: str | None,
    until: int | None,
) -> None:
    while not gone.done() and not feed.stopped:
        events, cursor = await feed.read(cursor, application_id=application_id, owner=owner)
        for event in events:
            await response.send(event.json, id=str(event.cursor), event=event.type)
        if until is not None and cursor >= until:
            return
        if events:
            continue
        waiting = asyncio.ensure_future(feed.wait_past(cursor))
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
