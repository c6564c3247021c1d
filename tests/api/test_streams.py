"""lendo-api and Redis: publishing submissions, applying updates, the outbox sweep."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.app_keys import RECONCILER, STORE
from lendo_api.publisher import SubmissionPublisher
from lendo_api.reconciler import Reconciler
from lendo_api.settings import ApiSettings
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import StatusChange
from lendo_api.timestamps import now
from lendo_local.redis_server import EmbeddedRedis, free_port
from lendo_streams import (
    API_GROUP,
    FinalStatus,
    StreamNames,
    SubmissionMessage,
    UpdateMessage,
    decode,
    encode,
    ensure_group,
)
from tests.helpers import started_up

Client = TestClient[web.Request, web.Application]

AppFactory = Callable[..., Awaitable[Client]]
DEADLINE = 5.0


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    return {"reconcile_interval": 3600}


@pytest.fixture
def start_api(redis: Redis, settings: ApiSettings, aiohttp_client: AiohttpClient) -> AppFactory:
    """Start the API with ``settings`` and any overrides; it stops before Redis is cleaned."""

    async def start(**overrides: Any) -> Client:
        return await aiohttp_client(create_app(settings.model_copy(update=overrides)))

    return start


@pytest.fixture
async def client(start_api: AppFactory) -> Client:
    """The API once its startup sweep is done, so that a test's own sweeps find all it made."""
    started = await start_api()
    await started_up(started.app)
    return started


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds; fail after ``DEADLINE`` seconds."""
    async with asyncio.timeout(DEADLINE):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


def first_sweep_done(client: Client) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return client.app[RECONCILER].rounds > 0

    return check


async def create(client: Client, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/api/applications", json={"first_name": " Åsa ", "last_name": "Öberg"}, headers=headers
    )
    assert response.status == 201
    body: dict[str, Any] = await response.json()
    return body


async def fetch(client: Client, application_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/applications/{application_id}")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def send_update(
    redis: Redis, streams: StreamNames, application_id: str, status: FinalStatus
) -> bytes:
    update = UpdateMessage(
        id=uuid.UUID(application_id), status=status, decided_at=datetime.now(UTC)
    )
    entry_id: Any = await redis.xadd(streams.updates, encode(update))
    return bytes(entry_id)


def acknowledged(
    redis: Redis, streams: StreamNames, last_id: bytes
) -> Callable[[], Awaitable[bool]]:
    """Whether the API's group has read up to ``last_id`` and acknowledged everything."""

    async def check() -> bool:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(streams.updates)
        return any(
            group["name"] == API_GROUP.encode()
            and group["last-delivered-id"] == last_id
            and group["pending"] == 0
            for group in groups
        )

    return check


def has_status(client: Client, application_id: str, status: str) -> Callable[[], Awaitable[bool]]:
    """Whether the API shows the application with ``status``."""

    async def check() -> bool:
        shown: str = (await fetch(client, application_id))["status"]
        return shown == status

    return check


async def entries(redis: Redis, stream: str) -> list[dict[bytes, bytes]]:
    """The fields of every entry of ``stream``, oldest first."""
    found: Any = await redis.xrange(stream)
    return [fields for _, fields in found]


async def submissions(redis: Redis, stream: str) -> list[SubmissionMessage]:
    return [decode(SubmissionMessage, fields) for fields in await entries(redis, stream)]


# --- publishing on create ---


async def test_a_created_application_is_handed_to_the_pollers(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    created = await create(client, **{"X-Request-ID": "req-7"})

    assert await submissions(redis, streams.applications) == [
        SubmissionMessage(
            id=uuid.UUID(created["id"]), first_name="Åsa", last_name="Öberg", request_id="req-7"
        )
    ]


async def test_a_published_application_is_not_published_again_by_the_sweep(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    await create(client)

    assert await client.app[RECONCILER].sweep() == 0
    assert await redis.xlen(streams.applications) == 1


# --- updates ---


async def test_an_update_makes_the_application_final(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    created = await create(client)

    await send_update(redis, streams, created["id"], "completed")

    await eventually(has_status(client, created["id"], "completed"))
    final = await fetch(client, created["id"])
    assert final["updated_at"] > final["created_at"]
    completed = await (await client.get("/api/applications?status=completed")).json()
    pending = await (await client.get("/api/applications?status=pending")).json()
    assert [item["id"] for item in completed["items"]] == [created["id"]]
    assert pending["items"] == []


async def test_a_final_status_never_changes_again(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    created = await create(client)
    await send_update(redis, streams, created["id"], "rejected")

    await eventually(has_status(client, created["id"], "rejected"))
    decided = await fetch(client, created["id"])

    await send_update(redis, streams, created["id"], "rejected")
    last = await send_update(redis, streams, created["id"], "completed")

    await eventually(acknowledged(redis, streams, last))
    assert await fetch(client, created["id"]) == decided


async def test_an_update_for_an_unknown_application_is_acknowledged_and_ignored(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    unknown = str(uuid.uuid4())

    last = await send_update(redis, streams, unknown, "completed")

    await eventually(acknowledged(redis, streams, last))
    assert (await client.get(f"/api/applications/{unknown}")).status == 404
    assert (await (await client.get("/api/applications")).json())["items"] == []
    assert await redis.xlen(streams.dead_letters) == 0


async def test_a_malformed_update_goes_to_the_dead_letters_and_the_rest_still_apply(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    created = await create(client)
    not_json = await redis.xadd(streams.updates, {b"data": b"not json"})
    pending_status = {"id": created["id"], "status": "pending", "decided_at": "2026-01-01T00:00Z"}
    not_final = await redis.xadd(streams.updates, {b"data": json.dumps(pending_status)})
    no_data = await redis.xadd(streams.updates, {b"other": b"field"})
    last = await send_update(redis, streams, created["id"], "completed")

    await eventually(acknowledged(redis, streams, last))
    assert (await fetch(client, created["id"]))["status"] == "completed"
    dead = await entries(redis, streams.dead_letters)
    assert [fields[b"source_id"] for fields in dead] == [not_json, not_final, no_data]
    assert dead[0][b"data"] == b"not json"
    assert dead[2][b"other"] == b"field"
    assert all(fields[b"reason"] for fields in dead)
    assert {fields[b"source_stream"] for fields in dead} == {streams.updates.encode()}


async def test_updates_still_apply_after_redis_lost_the_stream_and_group(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    created = await create(client)

    async def group_exists() -> bool:
        return bool(await redis.exists(streams.updates))

    await eventually(group_exists)
    await redis.delete(streams.updates)
    await send_update(redis, streams, created["id"], "completed")

    await eventually(has_status(client, created["id"], "completed"))


async def test_updates_read_but_not_acknowledged_before_a_crash_are_applied_on_restart(
    start_api: AppFactory, settings: ApiSettings, redis: Redis, streams: StreamNames
) -> None:
    store = await SqliteStore.open(settings.db_path)
    application = await store.create(
        id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", request_id=None
    )
    await store.close()
    await ensure_group(redis, streams.updates, API_GROUP)
    last = await send_update(redis, streams, str(application.id), "rejected")
    # The previous run of this consumer read the update and died before acknowledging it.
    await redis.xreadgroup(API_GROUP, settings.consumer_name, {streams.updates: ">"})

    client = await start_api()

    await eventually(acknowledged(redis, streams, last))
    assert (await fetch(client, str(application.id)))["status"] == "rejected"


# --- the outbox: Redis down, then back ---


async def test_without_redis_creates_succeed_and_everything_catches_up_once_it_is_back(
    start_api: AppFactory, stream_prefix: str
) -> None:
    streams = StreamNames(stream_prefix)
    port = free_port()
    client = await start_api(redis_url=f"redis://127.0.0.1:{port}/0")

    created = await create(client, **{"X-Request-ID": "req-down"})
    await eventually(first_sweep_done(client))  # failed: Redis is down

    assert (await fetch(client, created["id"]))["status"] == "pending"
    with EmbeddedRedis(port) as server:
        assert await client.app[RECONCILER].sweep() == 1
        assert await client.app[RECONCILER].sweep() == 0
        revived = Redis.from_url(server.url)
        try:
            published = await submissions(revived, streams.applications)
            await send_update(revived, streams, created["id"], "completed")

            await eventually(has_status(client, created["id"], "completed"))
        finally:
            await revived.aclose()
    assert published == [
        SubmissionMessage(
            id=uuid.UUID(created["id"]),
            first_name="Åsa",
            last_name="Öberg",
            request_id="req-down",
        )
    ]


async def test_the_sweep_publishes_a_bounded_batch_oldest_first(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    store = client.app[STORE]
    ids = [
        (await store.create(id=uuid.uuid4(), first_name="A", last_name="B", request_id=None)).id
        for _ in range(5)
    ]
    reconciler = Reconciler(
        store,
        SubmissionPublisher(redis, streams.applications, store),
        interval=3600,
        republish_after=3600,
        batch=2,
        keep_keys_for=timedelta(hours=24),
    )

    assert [await reconciler.sweep() for _ in range(4)] == [2, 2, 1, 0]
    assert [message.id for message in await submissions(redis, streams.applications)] == ids


async def test_the_sweep_republishes_pending_applications_that_went_quiet_but_never_final_ones(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    quiet, decided = await create(client), await create(client)
    store = client.app[STORE]
    await store.apply_updates([StatusChange(uuid.UUID(decided["id"]), "completed", now())])
    reconciler = Reconciler(
        store,
        SubmissionPublisher(redis, streams.applications, store),
        interval=3600,
        republish_after=1e-6,
        batch=100,
        keep_keys_for=timedelta(hours=24),
    )

    assert await reconciler.sweep() == 1

    published = [message.id for message in await submissions(redis, streams.applications)]
    assert published == [uuid.UUID(quiet["id"]), uuid.UUID(decided["id"]), uuid.UUID(quiet["id"])]


async def test_when_redis_loses_its_data_every_pending_application_is_published_again_at_once(
    start_api: AppFactory, redis: Redis, streams: StreamNames, stream_prefix: str
) -> None:
    client = await start_api(republish_after=3600, redis_check_interval=0.05)
    await started_up(client.app)
    pending, decided = await create(client), await create(client)
    await client.app[STORE].apply_updates(
        [StatusChange(uuid.UUID(decided["id"]), "completed", now())]
    )
    before = await submissions(redis, streams.applications)
    assert [message.id for message in before] == [
        uuid.UUID(pending["id"]),
        uuid.UUID(decided["id"]),
    ]

    # Redis restarted empty, as far as this system's keys go.
    await redis.delete(*[key async for key in redis.scan_iter(match=f"{stream_prefix}*")])

    async def published_again() -> bool:
        return bool(await submissions(redis, streams.applications))

    await eventually(published_again)
    again = await submissions(redis, streams.applications)
    assert [message.id for message in again] == [uuid.UUID(pending["id"])]
    assert await redis.exists(streams.generation)


async def test_a_malformed_update_naming_a_pending_application_has_it_asked_again_at_once(
    client: Client, redis: Redis, streams: StreamNames
) -> None:
    created = await create(client)
    garbled = {"id": created["id"], "status": "granted", "decided_at": "2026-01-01T00:00Z"}
    last: Any = await redis.xadd(streams.updates, {b"data": json.dumps(garbled)})
    await eventually(acknowledged(redis, streams, last))

    # Its published mark is forgotten: the next sweep hands it to the bank again,
    # without waiting republish_after (an hour here).
    assert await client.app[RECONCILER].sweep() == 1
    published = [message.id for message in await submissions(redis, streams.applications)]
    assert published == [uuid.UUID(created["id"])] * 2
    assert (await fetch(client, created["id"]))["status"] == "pending"
