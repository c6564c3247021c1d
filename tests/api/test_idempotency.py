"""Idempotency-Key on create: a retried request gets the original application, never a second."""

import asyncio
import sqlite3
import uuid
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.app_keys import RECONCILER, STORE
from lendo_api.settings import ApiSettings
from lendo_api.store import StatusChange
from lendo_api.timestamps import now
from lendo_streams import StreamNames
from tests.api.helpers import count

Client = TestClient[web.Request, web.Application]

ADA = {"first_name": "Ada", "last_name": "Lovelace"}


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    return {"reconcile_interval": 3600}


async def post(client: Client, body: Any, key: str | None) -> tuple[int, dict[str, Any], str]:
    """POST an application; return the status, the JSON body and the Location (or '')."""
    headers = {} if key is None else {"Idempotency-Key": key}
    response = await client.post("/api/applications", json=body, headers=headers)
    return response.status, await response.json(), response.headers.get("Location", "")


async def test_a_replay_returns_the_original_application_and_creates_nothing(
    client: Client, settings: ApiSettings, redis: Redis, streams: StreamNames
) -> None:
    first = await post(client, ADA, "order-42")
    replay = await post(client, ADA, "order-42")

    assert first[0] == 201
    assert replay == (200, first[1], first[2])
    assert first[2] == f"/api/applications/{first[1]['id']}"
    assert count(settings, "applications") == 1
    assert await redis.xlen(streams.applications) == 1


async def test_a_replay_matches_on_the_normalised_body(
    client: Client, settings: ApiSettings
) -> None:
    first = await post(client, ADA, "k")
    respaced = await post(client, {"last_name": " Lovelace ", "first_name": "Ada\u00a0"}, "k")

    assert respaced[0] == 200
    assert respaced[1]["id"] == first[1]["id"]
    assert count(settings, "applications") == 1


async def test_a_replay_shows_the_application_as_it_is_now(client: Client) -> None:
    _, created, _ = await post(client, ADA, "k")
    await client.app[STORE].apply_updates(
        [StatusChange(uuid.UUID(created["id"]), "completed", now())]
    )

    status, replayed, _ = await post(client, ADA, "k")

    assert status == 200
    assert replayed["id"] == created["id"]
    assert replayed["status"] == "completed"


async def test_a_key_reused_with_another_body_is_409_and_creates_nothing(
    client: Client, settings: ApiSettings
) -> None:
    await post(client, ADA, "order-42")

    response = await client.post(
        "/api/applications",
        json={"first_name": "Grace", "last_name": "Hopper"},
        headers={"Idempotency-Key": "order-42"},
    )

    assert response.status == 409
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == "/problems/idempotency-key-reused"
    assert "order-42" in problem["detail"]
    assert "Grace" not in problem["detail"]
    assert "Location" not in response.headers
    assert count(settings, "applications") == 1


async def test_different_keys_and_no_key_each_create_their_own(
    client: Client, settings: ApiSettings
) -> None:
    results = [await post(client, ADA, key) for key in ("a", "b", None, None)]

    assert [status for status, _, _ in results] == [201] * 4
    assert len({body["id"] for _, body, _ in results}) == 4


async def test_twenty_concurrent_requests_with_one_key_create_exactly_one(
    client: Client, settings: ApiSettings, redis: Redis, streams: StreamNames
) -> None:
    results = await asyncio.gather(*(post(client, ADA, "burst") for _ in range(20)))

    assert sorted(status for status, _, _ in results) == [200] * 19 + [201]
    assert len({body["id"] for _, body, _ in results}) == 1
    assert len({location for _, _, location in results}) == 1
    assert count(settings, "applications") == 1
    assert await redis.xlen(streams.applications) == 1


async def test_two_api_processes_on_one_database_create_exactly_one(
    redis: Redis, settings: ApiSettings, aiohttp_client: AiohttpClient
) -> None:
    # Two apps, two SQLite connections: the lock inside one store does not help here.
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))

    results = await asyncio.gather(
        *(post(client, ADA, "shared") for _ in range(10) for client in (one, two))
    )

    assert len({body["id"] for _, body, _ in results}) == 1
    assert [status for status, _, _ in results].count(201) == 1
    assert count(settings, "applications") == 1


async def test_an_expired_key_is_new_again_and_the_sweep_forgets_it(
    redis: Redis, settings: ApiSettings, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(create_app(settings.model_copy(update={"idempotency_ttl": 0.2})))
    first = await post(client, ADA, "k")
    await asyncio.sleep(0.3)

    again = await post(client, {"first_name": "Grace", "last_name": "Hopper"}, "k")

    assert (first[0], again[0]) == (201, 201)
    assert again[1]["id"] != first[1]["id"]
    assert count(settings, "idempotency_keys") == 1
    await asyncio.sleep(0.3)
    assert await client.app[RECONCILER].purge() == 1
    assert count(settings, "idempotency_keys") == 0


async def test_keys_are_kept_for_24_hours_by_default(settings: ApiSettings) -> None:
    assert timedelta(seconds=settings.idempotency_ttl) == timedelta(hours=24)


async def test_the_key_store_keeps_a_hash_of_the_body_never_the_names(
    client: Client, settings: ApiSettings
) -> None:
    await post(client, {"first_name": "Åsa", "last_name": "Öberg"}, "k")

    with closing(sqlite3.connect(settings.db_path)) as db:
        rows = db.execute("SELECT * FROM idempotency_keys").fetchall()
    assert len(rows) == 1
    assert not any("Åsa" in str(value) or "Öberg" in str(value) for value in rows[0])


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ünïcode", "tab\there"])
async def test_an_unusable_key_is_422_naming_the_header(
    client: Client, settings: ApiSettings, key: str
) -> None:
    response = await client.post("/api/applications", json=ADA, headers={"Idempotency-Key": key})

    assert response.status == 422
    problem = await response.json()
    assert [error["field"] for error in problem["errors"]] == ["Idempotency-Key"]
    assert count(settings, "applications") == 0
