"""Optional API keys: with LENDO_API_KEYS set, applications need a key; docs and health do not."""

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.settings import ApiSettings
from tests.api.helpers import count

Client = TestClient[web.Request, web.Application]

KEYS = ("first-key-3f9a", "second-key-77c1")
ADA = {"first_name": "Ada", "last_name": "Lovelace"}
CALLS = [
    ("POST", "/api/applications"),
    ("GET", "/api/applications"),
    ("GET", "/api/applications/7d3b5f0e-4c1a-4e8b-9f2d-1a6c0b8e5d47"),
]


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    return {"api_keys": KEYS}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(("method", "path"), CALLS)
@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, None),
        ("Bearer", None),
        ("Basic Zmlyc3Qta2V5LTNmOWE6", None),
        ("Bearer wrong-key", "invalid_token"),
        (f"Bearer {KEYS[0]}x", "invalid_token"),
        (f"Bearer {KEYS[0][:-1]}", "invalid_token"),
        (f"Bearer {KEYS[0]},{KEYS[1]}", "invalid_token"),
    ],
)
async def test_a_call_without_a_valid_key_is_401_with_a_bearer_challenge(
    client: Client,
    settings: ApiSettings,
    method: str,
    path: str,
    authorization: str | None,
    error: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.request(method, path, json=ADA, headers=headers)

    assert response.status == 401
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert (problem["status"], problem["title"]) == (401, "Unauthorized")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="lendo-api"')
    assert (f'error="{error}"' in challenge) == (error is not None)
    assert response.headers["X-Request-ID"]
    assert count(settings) == 0


@pytest.mark.parametrize("key", KEYS)
async def test_any_configured_key_opens_every_call(client: Client, key: str) -> None:
    created = await client.post("/api/applications", json=ADA, headers=bearer(key))
    body = await created.json()
    fetched = await client.get(created.headers["Location"], headers=bearer(key))
    listed = await client.get("/api/applications", headers={"Authorization": f"bearer  {key}"})

    assert created.status == 201
    assert fetched.status == 200
    assert await fetched.json() == body
    assert listed.status == 200
    assert (await listed.json())["items"] == [body]


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/openapi.json", "/api/docs", "/api/docs/static/swagger-ui.css"]
)
async def test_health_and_the_docs_stay_open(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status == 200


async def test_an_unknown_path_outside_the_applications_is_still_404(client: Client) -> None:
    response = await client.get("/api/nothing-here")

    assert response.status == 404


async def test_one_clients_idempotency_key_never_returns_another_clients_application(
    client: Client, settings: ApiSettings
) -> None:
    first = await client.post(
        "/api/applications", json=ADA, headers={**bearer(KEYS[0]), "Idempotency-Key": "k"}
    )
    second = await client.post(
        "/api/applications", json=ADA, headers={**bearer(KEYS[1]), "Idempotency-Key": "k"}
    )

    assert (first.status, second.status) == (201, 201)
    assert (await first.json())["id"] != (await second.json())["id"]
    assert count(settings) == 2


async def test_without_keys_configured_every_call_is_open(
    redis: Redis, settings: ApiSettings, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(create_app(settings.model_copy(update={"api_keys": ()})))

    response = await client.post("/api/applications", json=ADA)

    assert response.status == 201


def test_keys_come_comma_separated_from_the_environment_and_never_print(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LENDO_API_KEYS", f" {KEYS[0]} ,{KEYS[1]},")

    settings = ApiSettings(db_path=tmp_path / "x.sqlite3")

    assert [key.get_secret_value() for key in settings.api_keys] == list(KEYS)
    assert KEYS[0] not in repr(settings)
    assert KEYS[0] not in str(settings.model_dump())


def test_an_empty_variable_means_no_authentication(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LENDO_API_KEYS", "")

    assert ApiSettings(db_path=tmp_path / "x.sqlite3").api_keys == ()
