"""An application's history, and the event log as server-sent events: replay, narrowing, live."""

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis
from structlog.testing import capture_logs

from lendo_api.app import create_app
from lendo_api.app_keys import STORE
from lendo_api.settings import ApiSettings
from lendo_api.store import StatusChange
from lendo_api.timestamps import now
from tests import helpers
from tests.api.test_http import create, problem
from tests.api.test_streams import send_update
from tests.helpers import parse_stream

Client = TestClient[web.Request, web.Application]


async def replay(client: Client, query: str = "", **headers: str) -> list[dict[str, Any]]:
    """What a stream that stops once caught up (follow=false) sends."""
    response = await client.get(f"/api/events?follow=false{query}", headers=headers)
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    return parse_stream(await response.text())


async def next_event(response: ClientResponse) -> dict[str, Any]:
    event = await helpers.next_event(response)
    assert event is not None, "the stream ended"
    return event


async def complete(client: Client, application_id: str, status: str = "completed") -> None:
    change = StatusChange(uuid.UUID(application_id), status, now())  # type: ignore[arg-type]
    await client.app[STORE].apply_updates([change])


@pytest.mark.both_stores
async def test_the_history_holds_each_change_with_the_application_as_it_was(
    client: Client,
) -> None:
    created = await create(client)
    await complete(client, created["id"])
    final = await (await client.get(f"/api/applications/{created['id']}")).json()

    response = await client.get(f"/api/applications/{created['id']}/events")

    assert response.status == 200
    history = (await response.json())["items"]
    assert [event["type"] for event in history] == ["application.created", "application.completed"]
    assert [event["data"] for event in history] == [created, final]
    assert [event["timestamp"] for event in history] == [
        created["created_at"],
        final["updated_at"],
    ]
    assert history[0]["id"] != history[1]["id"]
    head = await client.head(f"/api/applications/{created['id']}/events")
    assert (head.status, head.content_type) == (200, "application/json")


async def test_the_history_of_an_unknown_or_malformed_id_is_a_problem(client: Client) -> None:
    unknown = uuid.uuid4()

    missing = await problem(await client.get(f"/api/applications/{unknown}/events"), 404)
    malformed = await problem(await client.get("/api/applications/nope/events"), 422)

    assert missing["detail"] == f"No application has id {unknown}."
    assert [error["field"] for error in malformed["errors"]] == ["id"]
    assert (await client.head(f"/api/applications/{unknown}/events")).status == 404


@pytest.mark.both_stores
async def test_a_stream_replays_every_event_after_the_last_one_received(client: Client) -> None:
    first, second = await create(client), await create(client)
    await complete(client, first["id"], "rejected")

    everything = await replay(client, "&after=0")
    resumed = await replay(client, "", **{"Last-Event-ID": everything[0]["id"]})
    # The header is what a reconnecting EventSource sends: it wins over the URL's cursor.
    header_wins = await replay(client, "&after=0", **{"Last-Event-ID": everything[1]["id"]})

    assert [(e["event"], e["data"]["data"]["id"]) for e in everything] == [
        ("application.created", first["id"]),
        ("application.created", second["id"]),
        ("application.rejected", first["id"]),
    ]
    assert [e["event"] for e in everything] == [e["data"]["type"] for e in everything]
    cursors = [int(e["id"]) for e in everything]
    assert cursors == sorted(set(cursors))
    assert resumed == everything[1:]
    assert header_wins == everything[2:]
    history = await (await client.get(f"/api/applications/{first['id']}/events")).json()
    assert [everything[0]["data"], everything[2]["data"]] == history["items"]


@pytest.mark.both_stores
async def test_a_stream_narrowed_to_one_application_holds_only_its_events(
    client: Client,
) -> None:
    first, second = await create(client), await create(client)
    await complete(client, second["id"])

    narrowed = await replay(client, f"&after=0&application_id={second['id']}")

    assert [(e["event"], e["data"]["data"]["id"]) for e in narrowed] == [
        ("application.created", second["id"]),
        ("application.completed", second["id"]),
    ]
    assert first["id"] not in {e["data"]["data"]["id"] for e in narrowed}


@pytest.mark.both_stores
async def test_a_live_stream_sends_new_events_as_they_are_committed(client: Client) -> None:
    before = await create(client)
    response = await client.get("/api/events")
    assert response.status == 200

    created = await create(client)
    await complete(client, created["id"])

    first, second = await next_event(response), await next_event(response)
    response.close()
    assert before["id"] not in {first["data"]["data"]["id"], second["data"]["data"]["id"]}
    assert (first["event"], first["data"]["data"]) == ("application.created", created)
    assert (second["event"], second["data"]["data"]["status"]) == (
        "application.completed",
        "completed",
    )
    assert int(second["id"]) > int(first["id"])


@pytest.mark.parametrize("api_overrides", [{"events_poll_interval": 60.0}])
async def test_a_decision_this_api_applies_is_sent_at_once_not_at_the_next_look(
    client: Client, redis: Redis, settings: ApiSettings
) -> None:
    response = await client.get("/api/events")
    created = await create(client)

    # Through the update stream, as the poller sends it: the consumer applies it.
    await send_update(redis, settings.streams, created["id"], "completed")

    # Far sooner than the feed's next look, a minute away.
    async with asyncio.timeout(10):
        first, second = await next_event(response), await next_event(response)
    response.close()
    assert (first["event"], second["event"]) == ("application.created", "application.completed")
    assert second["data"]["data"]["id"] == created["id"]


async def test_a_stream_counts_in_the_latency_metrics_to_its_start_not_its_end(
    client: Client,
) -> None:
    held = 0.5
    response = await client.get("/api/events")
    assert response.status == 200
    await asyncio.sleep(held)
    response.close()

    metrics = ""
    route = 'route="/api/events"'
    async with asyncio.timeout(5):
        while route not in metrics:  # observed once the handler has returned
            metrics = await (await client.get("/metrics")).text()
    [total] = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("lendo_api_http_request_duration_seconds_sum") and route in line
    ]
    assert total < held


async def test_a_client_leaving_mid_replay_ends_its_stream_quietly(client: Client) -> None:
    for _ in range(300):
        await create(client)

    with capture_logs() as logs:
        response = await client.get("/api/events?after=0")
        await response.content.readline()
        response.close()
        metrics = ""
        async with asyncio.timeout(5):
            while 'route="/api/events"' not in metrics:
                metrics = await (await client.get("/metrics")).text()

    assert [entry for entry in logs if entry["log_level"] == "error"] == []
    [answered] = [
        line
        for line in metrics.splitlines()
        if line.startswith("lendo_api_http_requests_total") and 'route="/api/events"' in line
    ]
    assert 'status="200"' in answered


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("after=abc", {}, "after"),
        ("after=-1", {}, "after"),
        ("after=12345678901234567890", {}, "after"),
        ("application_id=nope", {}, "application_id"),
        ("follow=maybe", {}, "follow"),
        ("since=1", {}, "since"),
        ("", {"Last-Event-ID": "1.5"}, "Last-Event-ID"),
    ],
)
async def test_a_stream_with_bad_input_is_refused_as_a_problem(
    client: Client, query: str, headers: dict[str, str], field: str
) -> None:
    response = await client.get(f"/api/events?{query}", headers=headers)

    found = await problem(response, 422)
    assert [error["field"] for error in found["errors"]] == [field]


async def test_the_stream_answers_head_with_its_headers(client: Client) -> None:
    response = await client.head("/api/events?after=0")

    assert (response.status, response.content_type) == (200, "text/event-stream")
    assert response.headers["X-Request-ID"]


async def test_a_cursor_beyond_the_log_replays_nothing(client: Client) -> None:
    await create(client)

    assert await replay(client, f"&after={2**63 - 1}") == []
    assert await replay(client, "&after=9999999999999999999") == []


@pytest.fixture
async def keyed_client(
    settings: ApiSettings, redis: Redis, aiohttp_client: AiohttpClient
) -> Client:
    keyed = settings.model_copy(update={"api_keys": (SecretStr("key-a"), SecretStr("key-b"))})
    return await aiohttp_client(create_app(keyed))


async def test_with_api_keys_a_stream_holds_only_the_clients_own_applications(
    keyed_client: Client,
) -> None:
    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    body = {"first_name": "Ada", "last_name": "Lovelace"}
    mine = await (
        await keyed_client.post("/api/applications", json=body, headers=bearer("key-a"))
    ).json()
    theirs = await (
        await keyed_client.post("/api/applications", json=body, headers=bearer("key-b"))
    ).json()

    seen_by_a = await replay(keyed_client, "&after=0", **bearer("key-a"))
    seen_by_b = await replay(keyed_client, "&after=0", **bearer("key-b"))
    anonymous = await keyed_client.get("/api/events?after=0&follow=false")

    assert [e["data"]["data"]["id"] for e in seen_by_a] == [mine["id"]]
    assert [e["data"]["data"]["id"] for e in seen_by_b] == [theirs["id"]]
    assert anonymous.status == 401


@pytest.mark.parametrize("api_store", ["postgresql"], indirect=True)
async def test_a_stream_on_one_replica_sends_what_another_replica_commits(
    client: Client, settings: ApiSettings, aiohttp_client: AiohttpClient
) -> None:
    other = await aiohttp_client(create_app(settings.model_copy(update={"consumer_name": "b"})))
    response = await client.get("/api/events")

    created = await create(other)

    event = await next_event(response)
    response.close()
    assert (event["event"], event["data"]["data"]) == ("application.created", created)
