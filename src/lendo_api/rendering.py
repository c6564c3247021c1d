"""Applications rendered straight to JSON, in the shape of :class:`lendo_api.models.Application`.

The models stay the contract (the OpenAPI document is generated from them, and
the tests check the responses against them), but building a pydantic model per
application only to serialise it cost more than the rest of a request: a page
of 100 took ~2.5 ms. Here a created application becomes a plain dict of its
public fields for orjson; one read by id, and a page, arrive from the store as
JSON text already.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import orjson
from aiohttp import web

from lendo_api.store import StoredApplication

_JSON = "application/json"


def timestamp_text(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, always the same width: as the store keeps it.

    A page's timestamps come verbatim from the store, so one application
    reads the same in a page and on its own. ``isoformat`` with a fixed
    ``timespec`` writes what ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` would, at
    a fraction of its cost (the offset ``+00:00`` becomes ``Z``).
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def application_fields(application: StoredApplication) -> dict[str, object]:
    """The fields of :class:`~lendo_api.models.Application`, and nothing the store keeps besides."""
    created_at = timestamp_text(application.created_at)
    return {
        "id": str(application.id),
        "first_name": application.first_name,
        "last_name": application.last_name,
        "status": application.status,
        "created_at": created_at,
        # A new application's two timestamps are one moment: written once.
        "updated_at": created_at
        if application.updated_at == application.created_at
        else timestamp_text(application.updated_at),
    }


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
