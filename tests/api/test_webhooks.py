"""Registering webhooks: the secret shown once, owner-scoped reads, rotation, the egress rules."""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.app_keys import STORE
from lendo_api.settings import ApiSettings
from tests.api.test_http import problem

Client = TestClient[web.Request, web.Application]

ALL_TYPES = [
    "application.created",
    "application.completed",
    "application.rejected",
    "application.failed",
]
RECEIVER = "http://127.0.0.1:9/hooks/lendo"
PUBLIC = "https://93.184.215.34/hooks/lendo"
KEYS = ("webhook-key-a1", "webhook-key-b2")


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    return {"webhook_allow_private_targets": True}


async def client_with(
    aiohttp_client: AiohttpClient, settings: ApiSettings, **overrides: Any
) -> Client:
    return await aiohttp_client(create_app(settings.model_copy(update=overrides)))


async def register(client: Client, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post("/api/webhooks", json=body, headers=headers)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/webhooks/{created['id']}"
    return created


@pytest.mark.both_stores
async def test_a_webhook_is_registered_read_rotated_and_deleted(client: Client) -> None:
    created = await register(client, {"url": RECEIVER})

    assert re.fullmatch(r"wh_[0-9a-f]{32}", created["id"])
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", created["secret"])
    assert created["url"] == RECEIVER
    assert created["events"] == ALL_TYPES
    shown = {key: value for key, value in created.items() if key != "secret"}
    read = await client.get(f"/api/webhooks/{created['id']}")
    assert (read.status, await read.json()) == (200, shown)
    listed = await client.get("/api/webhooks")
    assert (await listed.json())["items"] == [shown]

    rotated = await client.post(f"/api/webhooks/{created['id']}/rotate-secret")

    assert rotated.status == 200
    answer = await rotated.json()
    assert answer["id"] == created["id"]
    assert answer["secret"] != created["secret"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", answer["secret"])
    grace = datetime.fromisoformat(answer["previous_secret_expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert timedelta(hours=23) < grace < timedelta(hours=25)
    kept = await client.app[STORE].webhook(created["id"], "")
    assert kept is not None
    assert (kept.secret, kept.previous_secret) == (answer["secret"], created["secret"])
    assert (await (await client.get(f"/api/webhooks/{created['id']}")).json()) == shown

    deleted = await client.delete(f"/api/webhooks/{created['id']}")

    assert deleted.status == 204
    await problem(await client.get(f"/api/webhooks/{created['id']}"), 404)
    await problem(await client.delete(f"/api/webhooks/{created['id']}"), 404)
    await problem(await client.post(f"/api/webhooks/{created['id']}/rotate-secret"), 404)
    assert (await (await client.get("/api/webhooks")).json())["items"] == []


async def test_the_chosen_event_types_are_kept_once_each_in_their_order(client: Client) -> None:
    chosen = ["application.rejected", "application.completed", "application.rejected"]

    created = await register(client, {"url": RECEIVER, "events": chosen})

    assert created["events"] == ["application.rejected", "application.completed"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://172.16.0.1/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_a_non_public_target_is_refused_and_nothing_registered(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, url: str
) -> None:
    client = await client_with(aiohttp_client, settings, webhook_allow_private_targets=False)

    refused = await problem(await client.post("/api/webhooks", json={"url": url}), 422)

    assert [error["field"] for error in refused["errors"]] == ["url"]
    assert "non-public address" in refused["detail"]
    assert (await (await client.get("/api/webhooks")).json())["items"] == []


async def test_a_public_target_is_accepted_without_private_targets_allowed(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis
) -> None:
    client = await client_with(aiohttp_client, settings, webhook_allow_private_targets=False)

    created = await register(client, {"url": PUBLIC})

    assert created["url"] == PUBLIC


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/hook"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/hook"}, "url"),
        ({"url": "http://127.0.0.1:70000/hook"}, "url"),
        ({"url": "http://127.0.0.1/a b"}, "url"),
        ({"url": RECEIVER, "events": ["application.approved"]}, "events.0"),
        ({"url": RECEIVER, "events": []}, "events"),
        ({"url": RECEIVER, "events": ["application.created"] * 5}, "events"),
        ({"url": RECEIVER, "secret": "mine"}, "secret"),
        ({}, "url"),
    ],
)
async def test_invalid_input_is_refused_and_nothing_registered(
    client: Client, body: dict[str, Any], field: str
) -> None:
    refused = await problem(await client.post("/api/webhooks", json=body), 422)

    assert field in [error["field"] for error in refused["errors"]]
    assert (await (await client.get("/api/webhooks")).json())["items"] == []


async def test_malformed_json_and_a_malformed_id_are_problems(client: Client) -> None:
    malformed = await client.post(
        "/api/webhooks", data=b"{", headers={"Content-Type": "application/json"}
    )

    await problem(malformed, 400)
    invalid = await problem(await client.get("/api/webhooks/not-a-webhook"), 422)
    assert [error["field"] for error in invalid["errors"]] == ["id"]


async def test_with_an_allow_list_only_its_hosts_are_accepted_as_the_document_says(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis
) -> None:
    client = await client_with(
        aiohttp_client, settings, webhook_allowed_hosts=("127.0.0.1", "hooks.example.com")
    )
    document = await (await client.get("/api/openapi.json")).json()
    pattern = document["components"]["schemas"]["NewWebhook"]["properties"]["url"]["pattern"]

    accepted = await client.post("/api/webhooks", json={"url": RECEIVER})
    refused = await client.post("/api/webhooks", json={"url": "http://localhost:9/hooks"})

    assert accepted.status == 201
    assert "allowed" in (await problem(refused, 422))["detail"].lower()
    assert re.fullmatch(pattern, RECEIVER)
    assert re.fullmatch(pattern, "https://hooks.example.com/lendo")
    assert not re.fullmatch(pattern, "http://localhost:9/hooks")
    assert len((await (await client.get("/api/webhooks")).json())["items"]) == 1


@pytest.mark.both_stores
async def test_with_api_keys_a_client_sees_and_changes_only_its_own_webhooks(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis
) -> None:
    client = await client_with(
        aiohttp_client, settings, api_keys=tuple(SecretStr(key) for key in KEYS)
    )
    first, second = ({"Authorization": f"Bearer {key}"} for key in KEYS)
    mine = await register(client, {"url": RECEIVER}, **first)
    path = f"/api/webhooks/{mine['id']}"

    theirs = await client.get("/api/webhooks", headers=second)

    assert (await theirs.json())["items"] == []
    await problem(await client.get(path, headers=second), 404)
    await problem(await client.post(f"{path}/rotate-secret", headers=second), 404)
    await problem(await client.delete(path, headers=second), 404)
    await problem(await client.get("/api/webhooks"), 401)
    assert (await client.get(path, headers=first)).status == 200
    assert len((await (await client.get("/api/webhooks", headers=first)).json())["items"]) == 1
