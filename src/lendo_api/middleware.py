"""The API's one middleware: request id, API key, problem documents and HTTP metrics.

One layer rather than four: the layers themselves were a large share of a
GET (docs/performance.md, "One middleware instead of four"). Each concern
still lives in its own module (:mod:`~lendo_api.request_ids`,
:mod:`~lendo_api.auth`, :mod:`~lendo_api.problems`,
:mod:`~lendo_api.metrics`); here they are plain calls, in the order the
layers had: the request is timed and given its id first, so every answer, a
refusal or a crash included, carries the id and is counted; the key is
checked inside the error handling, so a refusal is a problem document too.
"""

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from lendo_api.auth import ApiKeyCheck
from lendo_api.metrics import STREAM_STARTED, ApiMetrics
from lendo_api.problems import problem_response
from lendo_api.request_ids import HEADER, assign_request_id


def api_middleware(keys: ApiKeyCheck, metrics: ApiMetrics) -> Middleware:
    """The middleware every request of the API passes through."""

    @web.middleware
    async def around_every_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500  # what a request that ends without an answer (cancelled) counts as
        request_id = assign_request_id(request)
        try:
            try:
                keys.authenticate(request)
                response = await handler(request)
            except Exception as error:
                if isinstance(error, web.HTTPException) and error.status < 400:
                    # A redirect is an answer, not an error: aiohttp sends it as raised.
                    error.headers[HEADER] = request_id
                    status = error.status
                    raise
                response = problem_response(request, error)
            response.headers[HEADER] = request_id
            status = response.status
            return response
        finally:
            # A stream (GET /api/events) is timed to its start, not over its whole life, and
            # its status (200) was sent then: the client leaving (cancelling it) is its end.
            stream_started = request.get(STREAM_STARTED)
            if stream_started is not None:
                metrics.observe(request, 200, stream_started - started)
            else:
                metrics.observe(request, status, time.perf_counter() - started)

    return around_every_request
