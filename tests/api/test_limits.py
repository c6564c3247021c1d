"""Request limits: bodies are JSON and small, or refused before anything is stored."""

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lendo_api.settings import ApiSettings
from tests.api.helpers import count

Client = TestClient[web.Request, web.Application]

LIMIT = 200


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    return {"max_body_bytes": LIMIT}


def body_of(size: int) -> bytes:
    """A valid application of exactly ``size`` bytes (JSON whitespace pads it)."""
    core = b'{"first_name": "Ada", "last_name": "Lovelace"}'
    return core[:-1] + b" " * (size - len(core)) + b"}"


async def test_a_body_at_the_limit_is_accepted_one_byte_more_is_413(
    client: Client, settings: ApiSettings
) -> None:
    json_type = {"Content-Type": "application/json"}

    at_limit = await client.post("/api/applications", data=body_of(LIMIT), headers=json_type)
    over = await client.post("/api/applications", data=body_of(LIMIT + 1), headers=json_type)

    assert at_limit.status == 201
    assert over.status == 413
    assert over.content_type == "application/problem+json"
    problem = await over.json()
    assert problem["status"] == 413
    assert str(LIMIT) in problem["detail"]
    assert over.headers["X-Request-ID"]
    assert count(settings) == 1


async def test_the_default_limit_is_128_kib(tmp_path: Path) -> None:
    assert ApiSettings(db_path=tmp_path / "x.sqlite3").max_body_bytes == 128 * 1024


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        None,
    ],
)
async def test_a_body_not_declared_as_json_is_415_and_changes_nothing(
    client: Client, settings: ApiSettings, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(
        "/api/applications",
        data=b'{"first_name": "Ada", "last_name": "Lovelace"}',
        headers=headers,
        skip_auto_headers=["Content-Type"],
    )

    assert response.status == 415
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == 415
    assert "application/json" in problem["detail"]
    assert count(settings) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_with_or_without_a_utf8_charset_is_accepted(
    client: Client, content_type: str
) -> None:
    response = await client.post(
        "/api/applications",
        data='{"first_name": "Åsa", "last_name": "Öberg"}'.encode(),
        headers={"Content-Type": content_type},
    )

    assert response.status == 201
    assert (await response.json())["first_name"] == "Åsa"


@pytest.mark.parametrize(
    "path",
    [
        "/api/applications",
        "/api/applications?status=pending&limit=1",
        "/api/applications?limit=0",
        "/api/applications/{id}",
        "/api/applications/7d3b5f0e-4c1a-4e8b-9f2d-1a6c0b8e5d47",
        "/api/applications/not-a-uuid",
        "/healthz",
        "/readyz",
        "/metrics",
    ],
)
async def test_head_answers_wherever_get_does_with_its_status_and_headers_and_no_body(
    client: Client, path: str
) -> None:
    created = await client.post("/api/applications", json={"first_name": "A", "last_name": "B"})
    path = path.format(id=(await created.json())["id"])

    got = await client.get(path)
    head = await client.head(path)

    assert head.status == got.status
    assert head.content_type == got.content_type
    assert head.headers["X-Request-ID"]
    assert await head.read() == b""
    assert await got.read() != b""
