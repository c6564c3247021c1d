"""What each operation promises: the OpenAPI description of every endpoint.

Each constant decorates one handler in :mod:`lendo_api.routes`. Schemas are
references to the models' components (:mod:`lendo_api.openapi.document`), and every
example is built from those models, so an example cannot show a field the
API does not have. Every error a handler can answer with is listed.
"""

from datetime import UTC, datetime
from uuid import UUID

from aiohttp_apigami import docs

from lendo_api import names
from lendo_api.models import (
    Application,
    ApplicationPage,
    ApplicationPath,
    ApplicationQuery,
    CreateHeaders,
    DeliveryAttempt,
    DeliveryAttemptList,
    Event,
    EventList,
    EventsHeaders,
    EventsQuery,
    FieldError,
    Health,
    NewApplication,
    NewWebhook,
    NewWebhookSecret,
    Problem,
    RotatedSecret,
    Webhook,
    WebhookList,
    WebhookPath,
)
from lendo_api.openapi.document import BEARER
from lendo_api.openapi.fragments import (
    REQUEST_ID_PARAMETER,
    empty_response_object,
    event_stream_response_object,
    json_response_object,
    parameters,
    problem_response_object,
    request_body_object,
    text_response_object,
)
from lendo_api.problems import (
    APPLICATION_NOT_FOUND,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_INPUT,
    MALFORMED_JSON,
    WEBHOOK_NOT_FOUND,
)

_ID = UUID("7d3b5f0e-4c1a-4e8b-9f2d-1a6c0b8e5d47")
_CREATED = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
_PENDING = Application(
    id=_ID,
    first_name="Ada",
    last_name="Lovelace",
    status="pending",
    created_at=_CREATED,
    updated_at=_CREATED,
)
_COMPLETED = _PENDING.model_copy(
    update={"status": "completed", "updated_at": datetime(2025, 3, 14, 9, 27, 4, tzinfo=UTC)}
)

_DECIDED = datetime(2025, 3, 14, 9, 27, 3, 812000, tzinfo=UTC)
_COMPLETED = _COMPLETED.model_copy(update={"decided_at": _DECIDED})
_CREATED_EVENT = Event(
    id="evt_3f9a2c4be1d04c7f8a6b5e2d1c0f9a8b",
    type="application.created",
    timestamp=_CREATED,
    data=_PENDING,
)
_COMPLETED_EVENT = Event(
    id="evt_9b8a7f6e5d4c4b3a9f8e7d6c5b4a3f2e",
    type="application.completed",
    timestamp=_COMPLETED.updated_at,
    data=_COMPLETED,
)

_SECURED: list[dict[str, list[str]]] = [{BEARER: []}]
_TAGS = ["applications"]

_LOCATION = {
    "Location": {
        "description": "Where the application can be read: /api/applications/{id}.",
        "schema": {"type": "string"},
    }
}
_READ_IT = {
    "getApplication": {
        "operationId": "getApplication",
        "parameters": {"id": "$response.body#/id"},
        "description": "Read the application, to follow its status.",
    }
}

_UNAUTHORIZED = problem_response_object(
    "No valid API key, and the server requires one (LENDO_API_KEYS is set).",
    Problem(
        title="Unauthorized",
        status=401,
        detail="This call needs an API key: send 'Authorization: Bearer <key>'.",
    ),
    headers={
        "WWW-Authenticate": {
            "description": 'The scheme to use: Bearer realm="lendo-api".',
            "schema": {"type": "string"},
        }
    },
)
_SERVER_ERROR = problem_response_object(
    "The server failed; the failure is logged under the response's X-Request-ID.",
    Problem(
        title="Internal Server Error",
        status=500,
        detail="The server failed to handle the request; it has been logged.",
    ),
)


def _invalid(description: str, *errors: FieldError) -> dict[str, object]:
    return problem_response_object(
        description,
        Problem(
            type=INVALID_INPUT,
            title="Invalid input",
            status=422,
            detail="; ".join(f"{error.field}: {error.message}" for error in errors),
            errors=list(errors),
        ),
    )


_NOT_FOUND = problem_response_object(
    "No application has this id.",
    Problem(
        type=APPLICATION_NOT_FOUND,
        title="Application not found",
        status=404,
        detail=f"No application has id {_ID}.",
    ),
)
_NOT_A_UUID = _invalid(
    "The id is not a UUID.", FieldError(field="id", message="Input should be a valid UUID")
)


CREATE_APPLICATION = docs(
    tags=_TAGS,
    operation_id="createApplication",
    summary="Create an application",
    description=(
        "Store a new application, `pending`, and hand it to the bank. The answer "
        "comes once the application is durably stored; the bank decides later, so "
        "follow the `Location` until the status is final.\n\n"
        f"**Names.** Each holds 1 to {names.MAX_LENGTH} characters as sent, not only "
        "spaces: letters of any script, combining marks, apostrophes, hyphens, spaces "
        "and the zero-width (non-)joiners of Persian and Indic names are welcome; "
        "control characters, line separators, bidirectional embeddings, overrides and "
        "isolates, surrogates and non-characters are refused (the schema's pattern is "
        "the rule). A name is stored NFC-normalised, with the spaces around it trimmed, "
        "and compared so (idempotency keys too).\n\n"
        "**Retrying safely.** With an `Idempotency-Key`, a repeated request (same "
        "key, same names) answers `200` with the application the first request "
        "created, as it is now, and the same `Location`; it creates nothing. Reusing "
        "a key with other names is refused with `409`. Keys are remembered for 24 "
        "hours (`LENDO_IDEMPOTENCY_TTL`), per API key; after that a key is new again."
    ),
    security=_SECURED,
    parameters=[*parameters(CreateHeaders, "header"), REQUEST_ID_PARAMETER],
    requestBody=request_body_object(
        NewApplication, NewApplication(first_name="Ada", last_name="Lovelace")
    ),
    responses={
        201: json_response_object(
            "Created: the new application, pending.", _PENDING, _LOCATION, _READ_IT
        ),
        200: json_response_object(
            "A replay: the application an earlier request with this Idempotency-Key "
            "and body created, as it is now. Nothing new was created.",
            _COMPLETED,
            _LOCATION,
            _READ_IT,
        ),
        400: problem_response_object(
            "The body is not JSON.",
            Problem(
                type=MALFORMED_JSON,
                title="Malformed JSON",
                status=400,
                detail="Invalid JSON: EOF while parsing an object at line 1 column 1",
            ),
        ),
        401: _UNAUTHORIZED,
        409: problem_response_object(
            "The Idempotency-Key was already used, within its lifetime, with other names.",
            Problem(
                type=IDEMPOTENCY_KEY_REUSED,
                title="Idempotency key reused",
                status=409,
                detail="Idempotency-Key 'order-42' was already used with a different body; "
                "use a new key for a new application.",
            ),
        ),
        413: problem_response_object(
            "The body is larger than the server accepts (128 KiB unless LENDO_MAX_BODY_BYTES "
            "says otherwise).",
            Problem(
                title="Request Entity Too Large",
                status=413,
                detail="Maximum request body size 131072 exceeded.",
            ),
        ),
        415: problem_response_object(
            "The body is not declared as JSON: Content-Type must be application/json "
            "(charset, if given, utf-8).",
            Problem(
                title="Unsupported Media Type",
                status=415,
                detail="The body must be JSON: send 'Content-Type: application/json', "
                "not 'text/plain'.",
            ),
        ),
        422: _invalid(
            "A name is missing, empty, too long or holds forbidden characters, the body "
            "has other fields or is not an object, or the Idempotency-Key is not "
            "1-255 printable ASCII characters. Every offending field is listed.",
            FieldError(
                field="first_name",
                message="must not contain U+202E, a bidirectional embedding or override",
            ),
            FieldError(field="status", message="Extra inputs are not permitted"),
        ),
        500: _SERVER_ERROR,
    },
)

LIST_APPLICATIONS = docs(
    tags=_TAGS,
    operation_id="listApplications",
    summary="List applications",
    description=(
        "Applications in creation order, optionally only those with one status, a "
        "page at a time. Pass a page's `next_cursor` as `cursor` to get the next; "
        "`next_cursor` is null on the last page. A cursor stays valid for ever, and "
        "applications created meanwhile appear on later pages, never twice. Unknown "
        "query parameters are refused, as they are likely typos."
    ),
    security=_SECURED,
    parameters=[*parameters(ApplicationQuery, "query"), REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object(
            "One page of applications.", ApplicationPage(items=[_PENDING], next_cursor=1)
        ),
        401: _UNAUTHORIZED,
        422: _invalid(
            "A query parameter is invalid or unknown; each one is listed.",
            FieldError(field="limit", message="Input should be less than or equal to 1000"),
        ),
        500: _SERVER_ERROR,
    },
)

GET_APPLICATION = docs(
    tags=_TAGS,
    operation_id="getApplication",
    summary="Read an application",
    description=(
        "The application with this id, with its current status. `pending` means "
        "the bank has not decided yet; `completed` and `rejected` are final; `failed` "
        "(with `failure_reason`) means the bank kept refusing it as invalid. The "
        "status follows the bank's decision within about a second."
    ),
    security=_SECURED,
    parameters=[*parameters(ApplicationPath, "path"), REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object("The application.", _COMPLETED),
        401: _UNAUTHORIZED,
        404: _NOT_FOUND,
        422: _NOT_A_UUID,
        500: _SERVER_ERROR,
    },
)

GET_APPLICATION_EVENTS = docs(
    tags=_TAGS,
    operation_id="getApplicationEvents",
    summary="An application's history",
    description=(
        "Every event of the application, oldest first: `application.created`, then, "
        "once the bank decides, `application.completed`, `application.rejected` or "
        "`application.failed`. Each event holds the application as it was right after "
        "the change; the events are the ones `/api/events` streams."
    ),
    security=_SECURED,
    parameters=[*parameters(ApplicationPath, "path"), REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object(
            "The application's events.", EventList(items=[_CREATED_EVENT, _COMPLETED_EVENT])
        ),
        401: _UNAUTHORIZED,
        404: _NOT_FOUND,
        422: _NOT_A_UUID,
        500: _SERVER_ERROR,
    },
)

EVENTS = docs(
    tags=["events"],
    operation_id="streamEvents",
    summary="Follow events as they happen (server-sent events)",
    description=(
        "A `text/event-stream` of every event of the log, as it is committed, on any "
        "replica: `id:` is the event's cursor, `event:` its type, `data:` the event as "
        "JSON (the `Event` schema). With `Last-Event-ID` (or `after`), every event after "
        "that cursor is replayed from the log first; a client that reconnects so misses "
        "nothing, across restarts and replicas. Delivery is at least once: deduplicate "
        "on the event's `id`. A comment line (`: ping`) every 15 s keeps proxies from "
        "closing an idle stream. With API keys, a client receives only the events of "
        "the applications it created. The stream never ends by itself unless "
        "`follow=false`; `curl -N` shows it as it comes."
    ),
    security=_SECURED,
    parameters=[
        *parameters(EventsQuery, "query"),
        *parameters(EventsHeaders, "header"),
        REQUEST_ID_PARAMETER,
    ],
    responses={
        200: event_stream_response_object("The stream of events.", _COMPLETED_EVENT, 42),
        401: _UNAUTHORIZED,
        422: _invalid(
            "A cursor is not 1 to 19 decimal digits, the application id is not a UUID, "
            "follow is not a boolean, or a query parameter is unknown; each one is listed.",
            FieldError(
                field="after",
                message="Value error, is not an event cursor of this API: 1 to 19 decimal digits",
            ),
        ),
        500: _SERVER_ERROR,
    },
)

_WEBHOOK_TAGS = ["webhooks"]
_WEBHOOK = Webhook(
    id="wh_5c2e8f1a9b7d4e3f8a6c0b1d2e3f4a5b",
    url="https://hooks.example.com/lendo",
    events=["application.completed", "application.rejected"],
    created_at=_CREATED,
)
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - an example
_WEBHOOK_NOT_FOUND = problem_response_object(
    "The caller registered no webhook with this id (another client's are not shown).",
    Problem(
        type=WEBHOOK_NOT_FOUND,
        title="Webhook not found",
        status=404,
        detail=f"No webhook of yours has id {_WEBHOOK.id}.",
    ),
)
_NOT_A_WEBHOOK_ID = _invalid(
    "The id is not a webhook id.",
    FieldError(field="id", message="String should match pattern '^wh_[0-9a-f]{32}$'"),
)

_ON_A_WEBHOOK = {
    401: _UNAUTHORIZED,
    404: _WEBHOOK_NOT_FOUND,
    422: _NOT_A_WEBHOOK_ID,
    500: _SERVER_ERROR,
}
"""The refusals every operation on one webhook (``/api/webhooks/{id}...``) may answer."""

CREATE_WEBHOOK = docs(
    tags=_WEBHOOK_TAGS,
    operation_id="createWebhook",
    summary="Register a webhook",
    description=(
        "Register a URL for the events of your applications (every type unless `events` "
        "names some). The `secret` of this answer is its Standard Webhooks signing secret: "
        "keep it, it is never shown again. Only http(s) URLs; loopback, private, "
        "link-local (cloud metadata) and other "
        "non-public addresses are refused unless the server allows private targets "
        "(`LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS`), and with an allow-list "
        "(`LENDO_WEBHOOK_ALLOWED_HOSTS`) only its hosts are accepted: the URL's pattern "
        "here is the rule. With API keys, a webhook is its client's: no other sees it."
    ),
    security=_SECURED,
    parameters=[REQUEST_ID_PARAMETER],
    requestBody=request_body_object(
        NewWebhook,
        NewWebhook(url=_WEBHOOK.url, events=["application.completed", "application.rejected"]),
    ),
    responses={
        201: json_response_object(
            "Registered: the webhook, with its signing secret (shown only here).",
            NewWebhookSecret(**_WEBHOOK.model_dump(), secret=_SECRET),
            {
                "Location": {
                    "description": "Where the webhook can be read: /api/webhooks/{id}.",
                    "schema": {"type": "string"},
                }
            },
        ),
        400: problem_response_object(
            "The body is not JSON.",
            Problem(
                type=MALFORMED_JSON,
                title="Malformed JSON",
                status=400,
                detail="Invalid JSON: EOF while parsing an object at line 1 column 1",
            ),
        ),
        401: _UNAUTHORIZED,
        413: problem_response_object(
            "The body is larger than the server accepts.",
            Problem(
                title="Request Entity Too Large",
                status=413,
                detail="Maximum request body size 131072 exceeded.",
            ),
        ),
        415: problem_response_object(
            "The body is not declared as JSON.",
            Problem(
                title="Unsupported Media Type",
                status=415,
                detail="The body must be JSON: send 'Content-Type: application/json', "
                "not 'text/plain'.",
            ),
        ),
        422: _invalid(
            "The URL is not http(s), is on a host this server may not send to, or resolves "
            "to a non-public address; an event type is unknown; or the body has other "
            "fields. Every offending field is listed; nothing is registered.",
            FieldError(
                field="url", message="the host '10.0.0.7' has the non-public address 10.0.0.7"
            ),
        ),
        500: _SERVER_ERROR,
    },
)

LIST_WEBHOOKS = docs(
    tags=_WEBHOOK_TAGS,
    operation_id="listWebhooks",
    summary="List your webhooks",
    description="Every webhook the caller registered, oldest first, without secrets.",
    security=_SECURED,
    parameters=[REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object("The caller's webhooks.", WebhookList(items=[_WEBHOOK])),
        401: _UNAUTHORIZED,
        500: _SERVER_ERROR,
    },
)

GET_WEBHOOK = docs(
    tags=_WEBHOOK_TAGS,
    operation_id="getWebhook",
    summary="Read a webhook",
    description="The webhook with this id, if the caller registered it; without its secret.",
    security=_SECURED,
    parameters=[*parameters(WebhookPath, "path"), REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object("The webhook.", _WEBHOOK),
        **_ON_A_WEBHOOK,
    },
)

DELETE_WEBHOOK = docs(
    tags=_WEBHOOK_TAGS,
    operation_id="deleteWebhook",
    summary="Delete a webhook",
    description="Forget the webhook: nothing more is sent to it.",
    security=_SECURED,
    parameters=[*parameters(WebhookPath, "path"), REQUEST_ID_PARAMETER],
    responses={
        204: empty_response_object("Deleted."),
        **_ON_A_WEBHOOK,
    },
)

ROTATE_WEBHOOK_SECRET = docs(
    tags=_WEBHOOK_TAGS,
    operation_id="rotateWebhookSecret",
    summary="Rotate a webhook's signing secret",
    description=(
        "Give the webhook a new secret, shown only in this answer. For 24 hours "
        "(`previous_secret_expires_at`) the previous secret keeps signing beside the new "
        "one, so a receiver can switch without missing a delivery; a second rotation "
        "within that time ends the grace of the first secret."
    ),
    security=_SECURED,
    parameters=[*parameters(WebhookPath, "path"), REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object(
            "The new secret.",
            RotatedSecret(
                id=_WEBHOOK.id,
                secret=_SECRET,
                previous_secret_expires_at=datetime(2025, 3, 15, 9, 26, 53, tzinfo=UTC),
            ),
        ),
        **_ON_A_WEBHOOK,
    },
)

LIST_WEBHOOK_DELIVERIES = docs(
    tags=_WEBHOOK_TAGS,
    operation_id="listWebhookDeliveries",
    summary="List a webhook's delivery attempts",
    description=(
        "The webhook's newest 100 delivery attempts, newest first: which event, the "
        "receiver's status code or why there was none, how long it took, and when the "
        "delivery is attempted next. A delivery ends with a 2xx answer; any other answer "
        "(redirects are not followed), no answer within the server's timeout (by default "
        "10 s) or a refused connection is retried after each delay of the server's retry "
        "schedule (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), then marked failed."
    ),
    security=_SECURED,
    parameters=[*parameters(WebhookPath, "path"), REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object(
            "The attempts, newest first.",
            DeliveryAttemptList(
                items=[
                    DeliveryAttempt(
                        event_id=_COMPLETED_EVENT.id,
                        event_type="application.completed",
                        attempt=2,
                        attempted_at=datetime(2025, 3, 14, 9, 27, 9, 40000, tzinfo=UTC),
                        status_code=200,
                        error=None,
                        duration_ms=41.7,
                        delivery_state="delivered",
                        next_attempt_at=None,
                    ),
                    DeliveryAttempt(
                        event_id=_COMPLETED_EVENT.id,
                        event_type="application.completed",
                        attempt=1,
                        attempted_at=datetime(2025, 3, 14, 9, 27, 4, 20000, tzinfo=UTC),
                        status_code=503,
                        error=None,
                        duration_ms=12.3,
                        delivery_state="delivered",
                        next_attempt_at=None,
                    ),
                ]
            ),
        ),
        **_ON_A_WEBHOOK,
    },
)

HEALTH = docs(
    tags=["operations"],
    operation_id="health",
    summary="Health check",
    description=(
        "Answers 200 while the process serves HTTP: the liveness probe. Open "
        "without an API key. It checks nothing else, so a Redis outage never "
        "gets the API restarted: it takes applications without Redis, and "
        "publishes them once Redis is back."
    ),
    parameters=[REQUEST_ID_PARAMETER],
    responses={200: json_response_object("The process serves HTTP.", Health())},
)

READINESS = docs(
    tags=["operations"],
    operation_id="readiness",
    summary="Readiness check",
    description=(
        "Answers 200 when the API can do all of its work: SQLite answers a query, "
        "Redis answers PING, and the update consumer is running; each check has "
        "1 s. Otherwise 503, naming what failed. Open without an API key."
    ),
    parameters=[REQUEST_ID_PARAMETER],
    responses={
        200: json_response_object("Every dependency answers.", Health()),
        503: problem_response_object(
            "A dependency failed its check; `detail` names every one that did.",
            Problem(title="Service Unavailable", status=503, detail="Not ready: redis failed."),
        ),
    },
)

METRICS = docs(
    tags=["operations"],
    operation_id="metrics",
    summary="Prometheus metrics",
    description=(
        "The API's metrics in the Prometheus text format (OpenMetrics when the "
        "scraper asks for it in `Accept`); each one is described in "
        "docs/operations.md. Applications by status and the stream backlogs are "
        "counted at each scrape. Open without an API key."
    ),
    parameters=[REQUEST_ID_PARAMETER],
    responses={
        200: text_response_object(
            "The metrics.",
            "# HELP lendo_api_applications_created_total Applications created "
            "(replays not counted).\n"
            "# TYPE lendo_api_applications_created_total counter\n"
            "lendo_api_applications_created_total 42.0\n",
        )
    },
)
