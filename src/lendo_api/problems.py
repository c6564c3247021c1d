"""The one place where errors become HTTP responses: RFC 9457 problem documents.

Handlers raise domain errors (:mod:`lendo_api.errors`) and aiohttp raises its
HTTP exceptions (the router's 404 and 405 included); the API's middleware
(:mod:`lendo_api.middleware`) renders every one of them here as
``application/problem+json``, so clients parse a single error shape.
"""

from collections.abc import Mapping

from aiohttp import web

from lendo_api.errors import (
    ApplicationNotFound,
    IdempotencyKeyReused,
    InvalidInput,
    MalformedJson,
    WebhookNotFound,
)
from lendo_api.models import Problem
from lendo_runtime.logs import get_logger

PROBLEM_JSON = "application/problem+json"

# Relative references, resolved against the API's base URL, where the problem
# types will be documented next to the OpenAPI document.
INVALID_INPUT = "/problems/invalid-input"
MALFORMED_JSON = "/problems/malformed-json"
APPLICATION_NOT_FOUND = "/problems/application-not-found"
IDEMPOTENCY_KEY_REUSED = "/problems/idempotency-key-reused"
WEBHOOK_NOT_FOUND = "/problems/webhook-not-found"

# Headers of aiohttp's HTTP errors that tell the client what to do next.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate")

log = get_logger()


def problem_response(request: web.Request, error: Exception) -> web.Response:
    """The problem document for a domain error, an HTTP error or a crash.

    A crash is logged with its traceback, under the request's id, and answered 500.
    """
    match error:
        case InvalidInput():
            problem = Problem(
                type=INVALID_INPUT,
                title="Invalid input",
                status=422,
                detail=str(error),
                errors=error.errors,
            )
        case MalformedJson():
            problem = Problem(
                type=MALFORMED_JSON, title="Malformed JSON", status=400, detail=str(error)
            )
        case ApplicationNotFound():
            problem = Problem(
                type=APPLICATION_NOT_FOUND,
                title="Application not found",
                status=404,
                detail=f"No application has id {error.application_id}.",
            )
        case WebhookNotFound():
            problem = Problem(
                type=WEBHOOK_NOT_FOUND,
                title="Webhook not found",
                status=404,
                detail=f"No webhook of yours has id {error.webhook_id}.",
            )
        case IdempotencyKeyReused():
            problem = Problem(
                type=IDEMPOTENCY_KEY_REUSED,
                title="Idempotency key reused",
                status=409,
                detail=f"{error}; use a new key for a new application.",
            )
        case web.HTTPException():
            return _http_problem(request, error)
        case _:
            log.exception("request_failed", method=request.method, path=request.path)
            problem = Problem(
                title="Internal Server Error",
                status=500,
                detail="The server failed to handle the request; it has been logged.",
            )
    return render_problem(problem)


def render_problem(problem: Problem, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        body=problem.model_dump_json(exclude_none=True).encode(),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def _http_problem(request: web.Request, error: web.HTTPException) -> web.Response:
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        detail = f"{request.method} is not allowed on {request.path}; allowed: {allowed}."
    elif isinstance(error, web.HTTPNotFound):
        detail = f"Nothing is at {request.path}."
    else:
        detail = error.text or error.reason
    headers = {name: error.headers[name] for name in _KEPT_HEADERS if name in error.headers}
    return render_problem(
        Problem(title=error.reason, status=error.status, detail=detail), headers=headers
    )
