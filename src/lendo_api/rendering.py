"""Responses of the API, rendered straight to JSON in the shapes of :mod:`lendo_api.models`.

The models stay the contract (the OpenAPI document is generated from them, and
the tests check the responses against them), but a pydantic model per
application only to serialise it costs more than the rest of a request
(docs/performance.md). So a created application becomes a plain dict of its
public fields for orjson; one read by id, and a page, arrive from the store as
JSON text already.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

import orjson
from aiohttp import web

from lendo_api.models import Application
from lendo_api.store import StoredApplication
from lendo_api.timestamps import timestamp_text

_JSON = "application/json"
_PUBLIC_FIELDS = tuple(Application.model_fields)


def application_fields(application: StoredApplication) -> dict[str, object]:
    """The fields of :class:`~lendo_api.models.Application`, and nothing the store keeps besides."""
    return {name: _json_value(getattr(application, name)) for name in _PUBLIC_FIELDS}


def _json_value(value: object) -> object:
    # Timestamps as the store writes them, so an application reads the same everywhere.
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def json_response(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type=_JSON, headers=headers)


def json_text_response(text: str) -> web.Response:
    """A 200 whose body is JSON text already written (by the store)."""
    return web.Response(body=text.encode(), content_type=_JSON)


def page_response(items: Sequence[str], next_cursor: str | None) -> web.Response:
    """An :class:`~lendo_api.models.ApplicationPage` from its items' JSON texts."""
    body = b"".join(
        (
            b'{"items":[',
            ",".join(items).encode(),
            b'],"next_cursor":',
            orjson.dumps(next_cursor),
            b"}",
        )
    )
    return web.Response(body=body, content_type=_JSON)


def items_response(items: Sequence[str]) -> web.Response:
    """An :class:`~lendo_api.models.EventList` body from its items' JSON texts."""
    body = b"".join((b'{"items":[', ",".join(items).encode(), b"]}"))
    return web.Response(body=body, content_type=_JSON)
