"""The OpenAPI 3.0 document, generated from the pydantic models the handlers use.

aiohttp-apigami walks the router and collects what each handler's ``@docs``
says (:mod:`lendo_api.openapi.operations`); every schema those point to is a model's
own JSON Schema, registered here as a component, so the document cannot
drift from what the handlers parse and render. The document is served at
:data:`OPENAPI_URL` and read by Swagger UI at :data:`DOCS_URL`, whose assets
are served from the apigami wheel, so the docs work without internet.
"""

import warnings
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_apigami import AiohttpApiSpec, OpenApiVersion
from aiohttp_apigami.constants import SWAGGER_DICT
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from lendo_api.models import (
    Application,
    ApplicationPage,
    DeliveryAttemptList,
    Event,
    EventList,
    Health,
    NewApplication,
    NewWebhook,
    NewWebhookSecret,
    Problem,
    RotatedSecret,
    Webhook,
    WebhookList,
)
from lendo_api.webhooks.targets import allowed_hosts_pattern

JsonSchema = dict[str, Any]

OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
DOCS_STATIC_URL = "/api/docs/static"
REF_TEMPLATE = "#/components/schemas/{model}"
BEARER = "bearerAuth"

COMPONENTS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (NewApplication, "validation"),
    (Application, "serialization"),
    (ApplicationPage, "serialization"),
    (Event, "serialization"),
    (EventList, "serialization"),
    (NewWebhook, "validation"),
    (Webhook, "serialization"),
    (NewWebhookSecret, "serialization"),
    (WebhookList, "serialization"),
    (RotatedSecret, "serialization"),
    (DeliveryAttemptList, "serialization"),
    (Health, "serialization"),
    (Problem, "serialization"),
)
"""The models that are components, and in which direction each crosses the wire."""

DESCRIPTION = """\
Loan applications: create one, then follow its status until the bank decides.

* **Statuses.** `pending` until the bank decides (usually 5–20 s), then
  `completed` (granted) or `rejected`; a final status never changes.
  `failed` (with `failure_reason`): the bank kept refusing the application
  itself as invalid; it stays failed until an operator re-drives it.
* **Errors** are `application/problem+json` (RFC 9457); invalid input lists
  every offending field in `errors`.
* **Authentication.** When the server is configured with API keys
  (`LENDO_API_KEYS`), every `/api/applications` and `/api/events` call needs
  `Authorization: Bearer <key>`; otherwise the calls are open. This document
  states which: the operations that need a key say so.
* **HEAD** answers wherever `GET` does, with the same status and headers.
* **Events.** Every change of an application is an event in a durable log:
  `application.created`, then `application.completed`, `application.rejected`
  or `application.failed`. Read one application's history, or follow them all
  as server-sent events from `/api/events`, resuming after `Last-Event-ID`.
* **Webhooks.** Register a URL for your events at `/api/webhooks`; its
  Standard Webhooks signing secret (`whsec_...`) is shown once, when
  registered or rotated. Loopback, private and
  link-local targets are refused; a server with an allow-list
  (`LENDO_WEBHOOK_ALLOWED_HOSTS`) accepts only its hosts, as the URL's
  pattern here says.
* **Idempotency.** Send an `Idempotency-Key` with a create to retry it safely.
* **Limits.** Request bodies are JSON (`Content-Type: application/json`) of at
  most 128 KiB unless configured otherwise (`LENDO_MAX_BODY_BYTES`).
* **Tracing.** Every response carries `X-Request-ID`: yours if you sent a valid
  one, else a new one. Quote it when reporting a problem.
"""


def setup_openapi(
    app: web.Application, *, keys_required: bool, webhook_hosts: Sequence[str] = ()
) -> None:
    """Document every route added so far, and serve the document and Swagger UI.

    With ``webhook_hosts`` (the server's allow-list), a webhook's URL pattern
    names exactly those hosts, as the server checks it.

    Without ``keys_required`` (the server has no API keys) nothing is
    checked, so the operations' security requirement and their 401 are
    dropped, and the bearer scheme is not declared.
    """
    api_spec = AiohttpApiSpec(
        url=OPENAPI_URL,
        swagger_path=DOCS_URL,
        static_path=DOCS_STATIC_URL,
        openapi_version=OpenApiVersion.V303,
        title="Lendo loan applications",
        version=metadata.version("lendo"),
        info={"description": DESCRIPTION},
    )
    schemas = component_schemas()
    if webhook_hosts:
        schemas["NewWebhook"]["properties"]["url"]["pattern"] = allowed_hosts_pattern(webhook_hosts)
    for name, schema in schemas.items():
        api_spec.spec.components.schema(name, schema)
    if keys_required:
        api_spec.spec.components.security_scheme(
            BEARER,
            {"type": "http", "scheme": "bearer", "description": "One of the server's API keys."},
        )
    with warnings.catch_warnings():
        # apigami 0.9 keeps the document under a plain ``str`` app key, for
        # compatibility with its 0.x releases; aiohttp warns about that.
        warnings.simplefilter("ignore", NotAppKeyWarning)
        api_spec.register(app, in_place=True)
    # The document is the one apigami serves, so it is completed in place.
    for item in app[SWAGGER_DICT]["paths"].values():
        for operation in item.values():
            # apigami's ``@docs`` adds Swagger 2's ``produces``; OpenAPI 3 states media
            # types per response, and a document with ``produces`` does not validate.
            operation.pop("produces", None)
            if not keys_required:
                operation.pop("security", None)
                operation["responses"].pop("401", None)
        if "get" in item:
            item["head"] = head_of(item["get"])


def head_of(get: JsonSchema) -> JsonSchema:
    """The HEAD operation aiohttp serves beside a GET: the GET's answers, without their bodies."""
    return {
        **get,
        "operationId": f"{get['operationId']}Head",
        "summary": f"{get['summary']}: headers only",
        "description": f"As `GET`, with the same status and headers, and no body.\n\n"
        f"{get['description']}",
        "responses": {
            status: {"description": response["description"], "headers": response["headers"]}
            for status, response in get["responses"].items()
        },
    }


def component_schemas() -> dict[str, JsonSchema]:
    """The component models' JSON Schemas, and the models they refer to, in OpenAPI 3.0 form."""
    _, top = models_json_schema(list(COMPONENTS), ref_template=REF_TEMPLATE)
    return {name: openapi30(schema) for name, schema in top["$defs"].items()}


def openapi30(schema: JsonSchema) -> JsonSchema:
    """Rewrite pydantic's JSON Schema (draft 2020-12) in the dialect of OpenAPI 3.0.

    3.0 has no ``null`` type, no ``const`` and no ``examples``: ``anyOf [X,
    null]`` becomes X with ``nullable: true``, ``const`` a one-value ``enum``,
    and ``examples`` one ``example``. The rest of what pydantic emits for these
    models is valid 3.0; the test validating the served document guards that.
    """
    converted: JsonSchema = {}
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            converted[key] = {name: openapi30(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            converted[key] = openapi30(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            converted[key] = [openapi30(sub) for sub in value]
        elif key == "const":
            converted["enum"] = [value]
        elif key == "examples":
            converted["example"] = value[0]
        else:
            converted[key] = value
    variants = converted.get("anyOf", [])
    if {"type": "null"} in variants:
        others = [variant for variant in variants if variant != {"type": "null"}]
        del converted["anyOf"]
        if len(others) > 1:
            converted["anyOf"] = others
        elif "$ref" in others[0]:
            # 3.0 ignores the siblings of a $ref, nullable among them.
            converted["allOf"] = others
        else:
            converted = {**others[0], **converted}
        converted["nullable"] = True
    return converted
