"""Request ids: one per request, taken from ``X-Request-ID`` or made up, echoed back.

The id travels with the application onto the submission stream and is bound
to every log line of the request, so one request can be followed end to end.
"""

import os
import re

import structlog
from aiohttp import web

HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)

# The id is echoed and logged, so a client's own is accepted only if short and printable.
ACCEPTABLE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
ACCEPTABLE_REQUEST_ID_TEXT = "one of 1 to 128 printable ASCII characters, no spaces, is kept"


def assign_request_id(request: web.Request) -> str:
    """The client's id if acceptable, else 32 random hex digits; kept on the request and logs.

    Nothing unbinds it: aiohttp runs each request in a task of its own, on a
    copy of the connection's context, so the binding ends with the request.
    """
    offered = request.headers.get(HEADER)
    if offered is not None and ACCEPTABLE_REQUEST_ID.fullmatch(offered):
        request_id = offered
    else:
        request_id = os.urandom(16).hex()
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id
