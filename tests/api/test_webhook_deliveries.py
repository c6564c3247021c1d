"""Delivering events to webhooks: signed per Standard Webhooks, retried, isolated, owner-scoped."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis
from structlog.testing import capture_logs

from lendo_api.app import create_app
from lendo_api.app_keys import STORE
from lendo_api.settings import ApiSettings
from lendo_api.store import StatusChange
from tests.api.test_http import problem
from tests.helpers import started_up
from tests.webhook_receiver import WebhookReceiver, always

Client = TestClient[web.Request, web.Application]

QUICK = {
    "webhook_allow_private_targets": True,
    "webhook_retry_schedule": (0.05, 0.05, 0.05),
    "webhook_poll_interval": 0.02,
    "events_poll_interval": 0.02,
    "webhook_timeout": 2.0,
    "webhook_claim": 5.0,
}


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    return dict(QUICK)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    started = WebhookReceiver()
    await started.start()
    yield started
    await started.stop()


async def api(aiohttp_client: AiohttpClient, settings: ApiSettings, **overrides: Any) -> Client:
    client = await aiohttp_client(create_app(settings.model_copy(update=overrides)))
    await started_up(client.app)
    return client


async def register(client: Client, url: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/webhooks", json={"url": url, **body})
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def create(client: Client, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/api/applications", json={"first_name": "Ada", "last_name": "Lovelace"}, headers=headers
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def decide(client: Client, application_id: str, status: str = "completed") -> None:
    change = StatusChange(uuid.UUID(application_id), status, datetime.now(UTC))  # type: ignore[arg-type]
    outcome = await client.app[STORE].apply_updates([change])
    assert outcome.applied == 1


async def history(client: Client, application_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/applications/{application_id}/events")
    events: list[dict[str, Any]] = (await response.json())["items"]
    return events


async def attempts(
    client: Client, webhook_id: str, done: Callable[[list[dict[str, Any]]], bool] = bool
) -> list[dict[str, Any]]:
    """The webhook's attempts as listed, once ``done`` holds for them (a record lags the POST)."""
    async with asyncio.timeout(5):
        while True:
            response = await client.get(f"/api/webhooks/{webhook_id}/deliveries")
            assert response.status == 200, await response.text()
            items: list[dict[str, Any]] = (await response.json())["items"]
            if done(items):
                return items
            await asyncio.sleep(0.01)


def settled(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """``count`` attempts listed, the newest of each delivery no longer pending."""
    return lambda items: (
        len(items) == count and all(item["delivery_state"] != "pending" for item in items)
    )


@pytest.mark.both_stores
async def test_each_event_is_posted_signed_as_the_log_has_it(
    client: Client, receiver: WebhookReceiver
) -> None:
    webhook = await register(client, receiver.url)
    application = await create(client)
    await decide(client, application["id"])
    events = await history(client, application["id"])

    await receiver.wait_for(lambda: len(receiver.delivered()) == 2)

    delivered = receiver.delivered()
    assert [delivered[event["id"]].verified(webhook["secret"]) for event in events] == events
    assert [event["type"] for event in events] == ["application.created", "application.completed"]
    for event in events:
        headers = delivered[event["id"]].headers
        assert headers["content-type"] == "application/json"
        assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    listed = await attempts(client, webhook["id"], settled(2))
    assert {
        (a["event_id"], a["attempt"], a["status_code"], a["delivery_state"]) for a in listed
    } == {(event["id"], 1, 204, "delivered") for event in events}
    assert all(a["error"] is None and a["next_attempt_at"] is None for a in listed)


@pytest.mark.both_stores
async def test_a_failing_receiver_gets_the_same_event_again_until_it_takes_it(
    client: Client, receiver: WebhookReceiver
) -> None:
    receiver.answer = lambda attempt: 503 if attempt < 3 else 200
    webhook = await register(client, receiver.url, events=["application.created"])
    application = await create(client)
    [event] = await history(client, application["id"])

    await receiver.wait_for(lambda: event["id"] in receiver.delivered())

    posts = receiver.of(event["id"])
    assert [post.status for post in posts] == [503, 503, 200]
    assert all(post.verified(webhook["secret"]) == event for post in posts)
    listed = await attempts(client, webhook["id"], settled(3))
    assert [(a["attempt"], a["status_code"]) for a in listed] == [(3, 200), (2, 503), (1, 503)]
    assert {a["delivery_state"] for a in listed} == {"delivered"}


async def test_after_the_last_retry_a_delivery_is_failed_logged_and_counted(
    client: Client, receiver: WebhookReceiver
) -> None:
    receiver.answer = always(500)
    webhook = await register(client, receiver.url, events=["application.created"])

    with capture_logs() as logs:
        application = await create(client)
        [event] = await history(client, application["id"])
        listed = await attempts(client, webhook["id"], settled(4))

    assert [(a["attempt"], a["delivery_state"]) for a in listed] == [
        (4, "failed"),
        (3, "failed"),
        (2, "failed"),
        (1, "failed"),
    ]
    assert all(a["next_attempt_at"] is None for a in listed)
    [failed] = [entry for entry in logs if entry["event"] == "webhook_delivery_failed"]
    assert (failed["webhook_id"], failed["event_id"], failed["status_code"]) == (
        webhook["id"],
        event["id"],
        500,
    )
    await asyncio.sleep(0.2)
    assert len(receiver.of(event["id"])) == 4
    metrics = await (await client.get("/metrics")).text()
    assert 'lendo_api_webhook_attempts_total{outcome="failed"} 1.0' in metrics
    assert 'lendo_api_webhook_attempts_total{outcome="retried"} 3.0' in metrics


async def test_a_redirect_is_not_followed_but_a_failed_attempt(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, receiver: WebhookReceiver
) -> None:
    elsewhere = WebhookReceiver()
    await elsewhere.start()
    try:
        receiver.answer = always(307)
        receiver.headers = {"Location": elsewhere.url}
        client = await api(aiohttp_client, settings, webhook_retry_schedule=())
        webhook = await register(client, receiver.url, events=["application.created"])

        await create(client)

        [attempt] = await attempts(client, webhook["id"], settled(1))
        assert (attempt["status_code"], attempt["delivery_state"]) == (307, "failed")
        assert elsewhere.received == []
    finally:
        await elsewhere.stop()


async def test_no_answer_in_time_is_a_failed_attempt(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, receiver: WebhookReceiver
) -> None:
    client = await api(aiohttp_client, settings, webhook_timeout=0.1, webhook_retry_schedule=())
    receiver.delay = 0.5
    webhook = await register(client, receiver.url)

    await create(client)
    await receiver.wait_for(lambda: len(receiver.received) == 1)

    [attempt] = await attempts(client, webhook["id"], settled(1))
    assert attempt["status_code"] is None
    assert attempt["error"] == "no answer within 0.1 s"
    assert attempt["delivery_state"] == "failed"


async def test_a_slow_receiver_delays_no_other_receiver(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, receiver: WebhookReceiver
) -> None:
    client = await api(
        aiohttp_client,
        settings,
        webhook_endpoint_concurrency=1,
        webhook_timeout=4.0,
        webhook_claim=10.0,
    )
    slow = WebhookReceiver(delay=1.0)
    await slow.start()
    try:
        await register(client, slow.url, events=["application.created"])
        await register(client, receiver.url, events=["application.created"])

        for _ in range(10):
            await create(client)
        await receiver.wait_for(lambda: len(receiver.delivered()) == 10, within=3.0)

        assert len(slow.received) <= 1
    finally:
        await slow.stop()


async def test_a_webhook_gets_only_the_types_it_chose(
    client: Client, receiver: WebhookReceiver
) -> None:
    await register(client, receiver.url, events=["application.rejected"])
    first, second = await create(client), await create(client)
    await decide(client, first["id"], "completed")
    await decide(client, second["id"], "rejected")

    await receiver.wait_for(lambda: len(receiver.delivered()) == 1)
    await asyncio.sleep(0.2)

    [only] = receiver.received
    assert only.headers["webhook-id"] == (await history(client, second["id"]))[-1]["id"]


@pytest.mark.both_stores
async def test_with_api_keys_a_client_receives_only_its_own_applications_events(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, receiver: WebhookReceiver
) -> None:
    keys = ("deliveries-key-a1", "deliveries-key-b2")
    client = await api(aiohttp_client, settings, api_keys=tuple(SecretStr(key) for key in keys))
    mine, theirs = ({"Authorization": f"Bearer {key}"} for key in keys)
    response = await client.post("/api/webhooks", json={"url": receiver.url}, headers=mine)
    webhook = await response.json()

    await create(client, **theirs)
    own = await create(client, **mine)
    await receiver.wait_for(lambda: len(receiver.delivered()) == 1)
    await asyncio.sleep(0.2)

    [only] = receiver.received
    assert only.verified(webhook["secret"])["data"]["id"] == own["id"]
    elsewhere = await client.get(f"/api/webhooks/{webhook['id']}/deliveries", headers=theirs)
    await problem(elsewhere, 404)


async def test_after_a_rotation_deliveries_verify_with_the_old_and_the_new_secret(
    client: Client, receiver: WebhookReceiver
) -> None:
    webhook = await register(client, receiver.url)
    rotated = await (await client.post(f"/api/webhooks/{webhook['id']}/rotate-secret")).json()

    await create(client)
    await receiver.wait_for(lambda: len(receiver.delivered()) == 1)

    [post] = receiver.received
    assert post.verified(rotated["secret"]) == post.verified(webhook["secret"])
    assert len(post.headers["webhook-signature"].split(" ")) == 2


async def test_a_deleted_webhook_is_sent_nothing_more(
    client: Client, receiver: WebhookReceiver
) -> None:
    receiver.answer = always(500)
    webhook = await register(client, receiver.url, events=["application.created"])
    await create(client)
    await receiver.wait_for(lambda: len(receiver.received) == 1)

    assert (await client.delete(f"/api/webhooks/{webhook['id']}")).status == 204
    await asyncio.sleep(0.3)

    assert len(receiver.received) <= 2


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_address_is_checked_again_at_delivery(
    aiohttp_client: AiohttpClient,
    settings: ApiSettings,
    redis: Redis,
    receiver: WebhookReceiver,
    host: str,
) -> None:
    registering = await api(aiohttp_client, settings, webhook_retry_schedule=())
    url = receiver.url.replace("127.0.0.1", host)
    webhook = await register(registering, url, events=["application.created"])
    await registering.close()
    client = await api(
        aiohttp_client, settings, webhook_allow_private_targets=False, webhook_retry_schedule=()
    )

    await create(client)

    [attempt] = await attempts(client, webhook["id"], settled(1))
    assert attempt["status_code"] is None
    assert f"the host {host!r} has the non-public address" in attempt["error"]
    assert receiver.received == []


async def test_a_host_off_the_allow_list_since_registration_is_sent_nothing(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, receiver: WebhookReceiver
) -> None:
    registering = await api(
        aiohttp_client, settings, webhook_allowed_hosts=("127.0.0.1",), webhook_retry_schedule=()
    )
    webhook = await register(registering, receiver.url, events=["application.created"])
    await registering.close()
    client = await api(
        aiohttp_client,
        settings,
        webhook_allowed_hosts=("hooks.example.com",),
        webhook_retry_schedule=(),
    )

    await create(client)

    [attempt] = await attempts(client, webhook["id"], settled(1))
    assert attempt["status_code"] is None
    assert "LENDO_WEBHOOK_ALLOWED_HOSTS" in attempt["error"]
    assert receiver.received == []


async def test_a_stopping_api_lets_the_attempt_under_way_end_and_records_it(
    aiohttp_client: AiohttpClient, settings: ApiSettings, redis: Redis, receiver: WebhookReceiver
) -> None:
    receiver.delay = 0.5
    client = await api(aiohttp_client, settings)
    webhook = await register(client, receiver.url, events=["application.created"])
    await create(client)
    await receiver.wait_for(lambda: receiver.in_flight > 0)

    await client.close()

    assert len(receiver.received) == 1
    after = await api(aiohttp_client, settings)
    [attempt] = await attempts(after, webhook["id"], settled(1))
    assert (attempt["status_code"], attempt["delivery_state"]) == (204, "delivered")


async def test_an_unknown_webhook_has_no_deliveries(client: Client) -> None:
    await problem(await client.get(f"/api/webhooks/wh_{'0' * 32}/deliveries"), 404)
    await problem(await client.get("/api/webhooks/nope/deliveries"), 422)
