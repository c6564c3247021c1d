"""Request ids: one per request, taken from ``X-Request-ID`` or made up, echoed back.

The id travels with the application onto the submission stream and is bound
to every log line of the request, so one request can be followed end to end.
"""

import re
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from lendo_api.keys import REQUEST_ID

HEADER = "X-Request-ID"

# The id is echoed and logged, so a client's own is accepted only if short and printable.
ACCEPTABLE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id, bind it to the logs, and echo it on the response."""
    offered = request.headers.get(HEADER, "")
    request_id = offered if ACCEPTABLE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response = await handler(request)
    response.headers[HEADER] = request_id
    return response
