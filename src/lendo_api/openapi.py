"""The OpenAPI 3.0 document, generated from the pydantic models the handlers use.

aiohttp-apigami walks the router and collects what each handler's ``@docs``
says (:mod:`lendo_api.operations`); every schema those point to is a model's
own JSON Schema, registered here as a component, so the document cannot
drift from what the handlers parse and render. The document is served at
:data:`OPENAPI_URL` and read by Swagger UI at :data:`DOCS_URL`, whose assets
are served from the apigami wheel, so the docs work without internet.
"""

import warnings
from importlib import metadata
from typing import Any, Literal

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_apigami import AiohttpApiSpec, OpenApiVersion
from aiohttp_apigami.constants import SWAGGER_DICT
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from lendo_api.auth import PROTECTED_PREFIX
from lendo_api.models import Application, ApplicationPage, Health, NewApplication, Problem
from lendo_api.problems import PROBLEM_JSON
from lendo_api.request_ids import ACCEPTABLE_REQUEST_ID_TEXT
from lendo_api.request_ids import HEADER as REQUEST_ID_HEADER

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
    (Health, "serialization"),
    (Problem, "serialization"),
)
"""The models that are components, and in which direction each crosses the wire."""

DESCRIPTION = """\
Loan applications: create one, then follow its status until the bank decides.

* **Statuses.** `pending` until the bank decides (usually 5–20 s), then
  `completed` (granted) or `rejected`; a final status never changes.
* **Errors** are `application/problem+json` (RFC 9457); invalid input lists
  every offending field in `errors`.
* **Authentication.** When the server is configured with API keys
  (`LENDO_API_KEYS`), every `/api/applications` call needs
  `Authorization: Bearer <key>`; otherwise the calls are open. This document
  states which: the operations that need a key say so.
* **HEAD** answers wherever `GET` does, with the same status and headers.
* **Idempotency.** Send an `Idempotency-Key` with a create to retry it safely.
* **Limits.** Request bodies are JSON (`Content-Type: application/json`) of at
  most 16 KiB unless configured otherwise (`LENDO_MAX_BODY_BYTES`).
* **Tracing.** Every response carries `X-Request-ID`: yours if you sent a valid
  one, else a new one. Quote it when reporting a problem.
"""


def setup_openapi(app: web.Application, *, keys_required: bool) -> None:
    """Document every route added so far, and serve the document and Swagger UI.

    With ``keys_required`` (the server has API keys), every operation under
    :data:`~lendo_api.auth.PROTECTED_PREFIX` requires the bearer scheme and
    may answer 401; without, nothing does, as nothing is checked.
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
    for name, schema in component_schemas().items():
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
    for path, item in app[SWAGGER_DICT]["paths"].items():
        for operation in item.values():
            # apigami's ``@docs`` adds Swagger 2's ``produces``; OpenAPI 3 states media
            # types per response, and a document with ``produces`` does not validate.
            operation.pop("produces", None)
            if keys_required and path.startswith(PROTECTED_PREFIX):
                operation["security"] = [{BEARER: []}]
                operation["responses"]["401"] = UNAUTHORIZED
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


# --- helpers for the operations' ``@docs`` ---


def ref(model: type[BaseModel]) -> JsonSchema:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def parameters(
    model: type[BaseModel], location: Literal["path", "query", "header"]
) -> list[JsonSchema]:
    """One parameter per field of ``model``, described by the field's own schema.

    An optional parameter is omitted to mean "none", so its ``null`` default
    and ``nullable`` are dropped: they would only invite sending ``null``.
    """
    schema = openapi30(model.model_json_schema(by_alias=True))
    required = set(schema.get("required", ()))
    found = []
    for name, field in schema["properties"].items():
        field_schema = {key: value for key, value in field.items() if key != "description"}
        field_schema.pop("title", None)
        if name not in required:
            field_schema.pop("nullable", None)
            if field_schema.get("default", ...) is None:
                del field_schema["default"]
        parameter = {"name": name, "in": location, "required": name in required}
        if "description" in field:
            parameter["description"] = field["description"]
        found.append({**parameter, "schema": field_schema})
    return found


REQUEST_ID_PARAMETER: JsonSchema = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "Your id for this request, echoed on the response and carried into the "
    f"logs of every process that handles it: {ACCEPTABLE_REQUEST_ID_TEXT}. Any other value "
    "is not refused but replaced by a new id, as if none was sent.",
    # No pattern: a value outside it would be accepted (replaced), against the pattern's word.
    "schema": {"type": "string"},
}

_REQUEST_ID_RESPONSE_HEADER: JsonSchema = {
    "description": "The request's id: the one sent, if valid, else a new one.",
    "schema": {"type": "string"},
}


def json_body(model: type[BaseModel], example: BaseModel) -> JsonSchema:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": ref(model), "example": example.model_dump(mode="json")}
        },
    }


def json_response(
    description: str,
    example: BaseModel,
    headers: dict[str, JsonSchema] | None = None,
    links: dict[str, JsonSchema] | None = None,
) -> JsonSchema:
    """A JSON response rendered from the model of ``example``, as the handlers render it.

    ``links`` name the operations its values lead to (OpenAPI links), which
    clients and schemathesis's stateful tests follow.
    """
    response = {
        "description": description,
        "headers": {REQUEST_ID_HEADER: _REQUEST_ID_RESPONSE_HEADER, **(headers or {})},
        "content": {
            "application/json": {
                "schema": ref(type(example)),
                "example": example.model_dump(mode="json"),
            }
        },
    }
    if links:
        response["links"] = links
    return response


def text_response(description: str, example: str) -> JsonSchema:
    """A plain-text response, such as the Prometheus exposition format."""
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: _REQUEST_ID_RESPONSE_HEADER},
        "content": {"text/plain": {"schema": {"type": "string"}, "example": example}},
    }


def problem_response(
    description: str, example: Problem, headers: dict[str, JsonSchema] | None = None
) -> JsonSchema:
    """A problem document, rendered as :func:`lendo_api.problems.render_problem` does."""
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: _REQUEST_ID_RESPONSE_HEADER, **(headers or {})},
        "content": {
            PROBLEM_JSON: {
                "schema": ref(Problem),
                "example": example.model_dump(mode="json", exclude_none=True),
            }
        },
    }


UNAUTHORIZED = problem_response(
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
