"""Pieces of OpenAPI 3.0 that the operations' ``@docs`` (:mod:`.operations`) are built from.

Each returns a plain dict, an OpenAPI object (Parameter, Request Body,
Response), whose schemas are references to the models' components, so an
operation's description cannot drift from what the handlers parse and render.
"""

from typing import Literal

from pydantic import BaseModel

from lendo_api.models import EVENT_CURSOR_PATTERN, Event, Problem
from lendo_api.openapi.document import REF_TEMPLATE, JsonSchema, openapi30
from lendo_api.problems import PROBLEM_JSON
from lendo_api.request_ids import ACCEPTABLE_REQUEST_ID_TEXT
from lendo_api.request_ids import HEADER as REQUEST_ID_HEADER


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


def request_body_object(model: type[BaseModel], example: BaseModel) -> JsonSchema:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": ref(model), "example": example.model_dump(mode="json")}
        },
    }


def json_response_object(
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


def empty_response_object(description: str) -> JsonSchema:
    """A response without a body, such as a 204."""
    return {"description": description, "headers": {REQUEST_ID_HEADER: _REQUEST_ID_RESPONSE_HEADER}}


def text_response_object(description: str, example: str) -> JsonSchema:
    """A plain-text response, such as the Prometheus exposition format."""
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: _REQUEST_ID_RESPONSE_HEADER},
        "content": {"text/plain": {"schema": {"type": "string"}, "example": example}},
    }


def event_stream_response_object(description: str, event: Event, cursor: int) -> JsonSchema:
    """A ``text/event-stream`` response; its schema is that of one event, as SSE tools read it.

    On the wire each event is the lines ``id:``, ``event:`` and ``data:``, then
    an empty line; the schema and the example describe one such event's fields.
    """
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: _REQUEST_ID_RESPONSE_HEADER},
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "One server-sent event (WHATWG HTML, text/event-stream): "
                    "the lines `id: <cursor>`, `event: <type>` and `data: <the event as JSON, "
                    f"one line>` ({ref(Event)['$ref']}), then an empty line. After 15 s "
                    "without an event, a comment line `: ping` keeps the stream open.",
                    "required": ["id", "event", "data"],
                    "properties": {
                        "id": {
                            "type": "string",
                            "pattern": EVENT_CURSOR_PATTERN,
                            "description": "The event's cursor: send it back as Last-Event-ID.",
                        },
                        "event": {
                            key: value
                            for key, value in Event.model_json_schema()["properties"][
                                "type"
                            ].items()
                            if key != "title"
                        },
                        "data": {"type": "string", "description": "The Event, as JSON."},
                    },
                },
                "example": {
                    "id": str(cursor),
                    "event": event.type,
                    "data": event.model_dump_json(),
                },
            }
        },
    }


def problem_response_object(
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
