"""HTTP handlers: parse the request with a model, call the domain, render the result.

What each handler promises is in :mod:`lendo_api.openapi.operations`, attached here
as its OpenAPI description.
"""

import json
from collections.abc import Mapping
from functools import cache
from typing import TypeVar, get_args

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from lendo_api.app_keys import (
    APPLICATIONS,
    EVENT_FEED,
    METRICS,
    REDIS,
    SETTINGS,
    STORE,
    UPDATES_TASK,
    WEBHOOK_TARGETS,
)
from lendo_api.auth import CLIENT
from lendo_api.errors import InvalidInput, MalformedJson, WebhookNotFound
from lendo_api.event_stream import stream_events
from lendo_api.models import (
    ApplicationPath,
    ApplicationQuery,
    CreateHeaders,
    EventsHeaders,
    EventsQuery,
    EventType,
    FieldError,
    Health,
    NewApplication,
    NewWebhook,
    WebhookPath,
    encode_cursor,
)
from lendo_api.openapi import operations
from lendo_api.rendering import (
    application_fields,
    items_response,
    json_response,
    json_text_response,
    page_response,
)
from lendo_api.request_ids import REQUEST_ID
from lendo_api.timestamps import now, timestamp_text
from lendo_api.webhooks.deliveries import RecordedAttempt
from lendo_api.webhooks.registrations import SECRET_GRACE, StoredWebhook, new_secret, new_webhook
from lendo_runtime import probes
from lendo_runtime.metrics import metrics_handler

M = TypeVar("M", bound=BaseModel)

APPLICATION_PATH = "/api/applications/{id}"
WEBHOOK_PATH = "/api/webhooks/{id}"
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
RECENT_ATTEMPTS = 100
"""Attempts ``GET /api/webhooks/{id}/deliveries`` lists."""


def setup_routes(app: web.Application) -> None:
    # Every GET answers HEAD too (aiohttp's default); the OpenAPI document describes both.
    app.router.add_post("/api/applications", create_application)
    app.router.add_get("/api/applications", list_applications)
    app.router.add_get(APPLICATION_PATH, get_application)
    app.router.add_get(f"{APPLICATION_PATH}/events", get_application_events)
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/webhooks", create_webhook)
    app.router.add_get("/api/webhooks", list_webhooks)
    app.router.add_get(WEBHOOK_PATH, get_webhook)
    app.router.add_delete(WEBHOOK_PATH, delete_webhook)
    app.router.add_post(f"{WEBHOOK_PATH}/rotate-secret", rotate_webhook_secret)
    app.router.add_get(f"{WEBHOOK_PATH}/deliveries", list_webhook_deliveries)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", readiness)
    app.router.add_get("/metrics", metrics)


@operations.CREATE_APPLICATION
async def create_application(request: web.Request) -> web.Response:
    headers = _parse(CreateHeaders, _headers(request, CreateHeaders))
    new = _parse_json(NewApplication, await _json_body(request))
    creation = await request.app[APPLICATIONS].create(
        first_name=new.first_name,
        last_name=new.last_name,
        request_id=request[REQUEST_ID],
        idempotency_key=headers.idempotency_key,
        client=request[CLIENT],
    )
    fields = application_fields(creation.application)
    # A UUID needs no quoting: plain formatting is cheaper than the router's url_for.
    location = APPLICATION_PATH.format(id=fields["id"])
    return json_response(
        fields, status=201 if creation.created else 200, headers={"Location": location}
    )


@operations.GET_APPLICATION
async def get_application(request: web.Request) -> web.Response:
    path = _parse(ApplicationPath, request.match_info)
    application = await request.app[APPLICATIONS].get_json(path.id)
    return json_text_response(application)


@operations.GET_APPLICATION_EVENTS
async def get_application_events(request: web.Request) -> web.Response:
    path = _parse(ApplicationPath, request.match_info)
    return items_response(await request.app[APPLICATIONS].events_json(path.id))


@operations.EVENTS
async def events(request: web.Request) -> web.StreamResponse:
    query = _parse(EventsQuery, request.query)
    headers = _parse(EventsHeaders, _headers(request, EventsHeaders))
    # With API keys, a client's stream holds only the events of its own applications.
    owner = request[CLIENT] or None
    return await stream_events(
        request,
        request.app[EVENT_FEED],
        after=query.after if headers.last_event_id is None else headers.last_event_id,
        application_id=query.application_id,
        owner=owner,
        follow=query.follow,
    )


@operations.LIST_APPLICATIONS
async def list_applications(request: web.Request) -> web.Response:
    query = _parse(ApplicationQuery, request.query)
    page = await request.app[APPLICATIONS].list_page(
        status=query.status, limit=query.limit, after=query.cursor
    )
    cursor = None if page.next_after is None else encode_cursor(page.next_after)
    return page_response(page.items, cursor)


@operations.CREATE_WEBHOOK
async def create_webhook(request: web.Request) -> web.Response:
    new = _parse_json(NewWebhook, await _json_body(request))
    refusal = await request.app[WEBHOOK_TARGETS].refusal(new.url)
    if refusal is not None:
        raise InvalidInput([FieldError(field="url", message=refusal)])
    # Each type once, in the order given.
    events = tuple(dict.fromkeys(new.events or EVENT_TYPES))
    webhook = new_webhook(new.url, events, owner=request[CLIENT])
    await request.app[STORE].add_webhook(webhook)
    return json_response(
        {**_webhook_fields(webhook), "secret": webhook.secret},
        status=201,
        headers={"Location": WEBHOOK_PATH.format(id=webhook.id)},
    )


@operations.LIST_WEBHOOKS
async def list_webhooks(request: web.Request) -> web.Response:
    webhooks = await request.app[STORE].webhooks_of(request[CLIENT])
    return json_response({"items": [_webhook_fields(webhook) for webhook in webhooks]})


@operations.GET_WEBHOOK
async def get_webhook(request: web.Request) -> web.Response:
    path = _parse(WebhookPath, request.match_info)
    webhook = await request.app[STORE].webhook(path.id, request[CLIENT])
    if webhook is None:
        raise WebhookNotFound(path.id)
    return json_response(_webhook_fields(webhook))


@operations.DELETE_WEBHOOK
async def delete_webhook(request: web.Request) -> web.Response:
    path = _parse(WebhookPath, request.match_info)
    if not await request.app[STORE].delete_webhook(path.id, request[CLIENT]):
        raise WebhookNotFound(path.id)
    return web.Response(status=204)


@operations.ROTATE_WEBHOOK_SECRET
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    path = _parse(WebhookPath, request.match_info)
    previous_until = now() + SECRET_GRACE
    webhook = await request.app[STORE].rotate_webhook_secret(
        path.id, request[CLIENT], secret=new_secret(), previous_until=previous_until
    )
    if webhook is None:
        raise WebhookNotFound(path.id)
    return json_response(
        {
            "id": webhook.id,
            "secret": webhook.secret,
            "previous_secret_expires_at": timestamp_text(previous_until),
        }
    )


@operations.LIST_WEBHOOK_DELIVERIES
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    path = _parse(WebhookPath, request.match_info)
    attempts = await request.app[STORE].webhook_attempts(
        path.id, request[CLIENT], limit=RECENT_ATTEMPTS
    )
    if attempts is None:
        raise WebhookNotFound(path.id)
    return json_response({"items": [_attempt_fields(attempt) for attempt in attempts]})


def _attempt_fields(attempt: RecordedAttempt) -> dict[str, object]:
    """An attempt as :class:`lendo_api.models.DeliveryAttempt`."""
    return {
        "event_id": attempt.event_id,
        "event_type": attempt.event_type,
        "attempt": attempt.attempt,
        "attempted_at": timestamp_text(attempt.attempted_at),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": round(attempt.duration * 1000, 3),
        "delivery_state": attempt.state,
        "next_attempt_at": None
        if attempt.next_attempt_at is None
        else timestamp_text(attempt.next_attempt_at),
    }


def _webhook_fields(webhook: StoredWebhook) -> dict[str, object]:
    """A webhook as :class:`lendo_api.models.Webhook`: never its secrets."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "created_at": timestamp_text(webhook.created_at),
    }


@operations.HEALTH
async def health(request: web.Request) -> web.Response:
    return json_response(Health().model_dump())


@operations.READINESS
async def readiness(request: web.Request) -> web.Response:
    app = request.app
    return await probes.readiness(
        {
            "database": app[STORE].check,
            "redis": probes.redis_answers(app[REDIS]),
            "update_consumer": probes.task_running(app[UPDATES_TASK]),
        }
    )


@operations.METRICS
async def metrics(request: web.Request) -> web.StreamResponse:
    app = request.app

    async def refresh() -> None:
        await app[METRICS].refresh(app[STORE], app[REDIS], app[SETTINGS].streams)

    return await metrics_handler(app[METRICS].registry, refresh)(request)


async def _json_body(request: web.Request) -> bytes:
    """The body, if declared as JSON (else 415); aiohttp refuses one over the size limit (413)."""
    charset = (request.charset or "utf-8").lower()
    if request.content_type != "application/json" or charset != "utf-8":
        sent = request.headers.get(hdrs.CONTENT_TYPE)
        raise web.HTTPUnsupportedMediaType(
            text="The body must be JSON: send 'Content-Type: application/json', "
            + (f"not {sent!r}." if sent else "none was sent.")
        )
    return await request.read()


def _headers(request: web.Request, model: type[BaseModel]) -> dict[str, str]:
    """The headers ``model`` reads, by their names on the wire, if the request has them."""
    headers = request.headers
    return {name: headers[name] for name in _wire_names(model) if name in headers}


@cache
def _wire_names(model: type[BaseModel]) -> tuple[str, ...]:
    # Looked up once: walking the model's fields is a cost on every create.
    return tuple(field.alias or name for name, field in model.model_fields.items())


def _parse_json(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        [first, *_] = error.errors()
        if first["type"] != "json_invalid":
            raise _invalid(error) from None
        parsed = _json_with_lone_surrogates(body)
        if parsed is None:
            raise MalformedJson(first["msg"]) from None
    try:
        return model.model_validate(parsed)
    except ValidationError as error:
        raise _invalid(error) from None


def _json_with_lone_surrogates(body: bytes) -> object | None:
    """The body as the standard library reads it, or None if it is not JSON.

    pydantic's parser refuses an escaped lone surrogate (``"\\ud800"``), which
    the JSON grammar allows (RFC 8259, section 8.2): read so, the field that
    holds it is refused as invalid input (422), not the body as malformed.
    """
    try:
        parsed: object = json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None
    return parsed


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _parse(model: type[M], data: Mapping[str, str]) -> M:
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise _invalid(error) from None


def _invalid(error: ValidationError) -> InvalidInput:
    return InvalidInput(
        [
            FieldError(field=".".join(map(str, e["loc"])) or "body", message=e["msg"])
            for e in error.errors()
        ]
    )
