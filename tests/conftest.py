"""Fixtures every group of tests shares: a real Redis isolated per test by key prefix, a bank
simulator, and the API in-process."""

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.settings import ApiSettings
from lendo_banksim.config import SimConfig
from lendo_banksim.server import RunningBankSim, running_bank_sim
from lendo_local.redis_server import EmbeddedRedis, redis_answers
from lendo_streams import StreamNames
from tests.helpers import started_up
from tests.postgres_server import scratch_database, scratch_schema, server_url

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``LENDO_TEST_REDIS_URL``, else a local Redis on 6379, else one we start."""
    configured = os.environ.get("LENDO_TEST_REDIS_URL")
    if configured:
        yield configured
    elif redis_answers(LOCAL_REDIS):
        yield LOCAL_REDIS
    else:
        with EmbeddedRedis() as server:
            yield server.url


@pytest.fixture
def stream_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def streams(stream_prefix: str) -> StreamNames:
    return StreamNames(stream_prefix)


@pytest.fixture
async def redis(redis_url: str, stream_prefix: str) -> AsyncIterator[Redis]:
    """A client on the test Redis; deletes this test's keys afterwards."""
    client = Redis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{stream_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# --- PostgreSQL, isolated per test by database ---


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``LENDO_TEST_DATABASE_URL``, else PostgreSQL on 5432, else one we start."""
    with server_url() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of this session's own on the test server, dropped after."""
    with scratch_database(postgres_server) as url:
        yield url


@pytest.fixture
def database_url(postgres_database: str) -> Iterator[str]:
    """A schema of this test's own in the session's database, as a URL; dropped after."""
    with scratch_schema(postgres_database) as url:
        yield url


# --- bank simulator ---


@pytest.fixture
async def bank_sim() -> AsyncIterator[RunningBankSim]:
    """A bank simulator on a free port that decides within 0.05-0.2 s of submission."""
    async with running_bank_sim(SimConfig(min_delay=0.05, max_delay=0.2)) as sim:
        yield sim


BankAnswering = Callable[[str], Awaitable[str]]


@pytest.fixture
def bank_answering(aiohttp_server: AiohttpServer) -> BankAnswering:
    """Starts a bank whose jobs all have the given status, spelled as given; returns its URL.

    It breaks the bank's contract as the contract-exact simulator never does:
    statuses in another case, or unknown ones.
    """

    async def start(status: str) -> str:
        async def submit(request: web.Request) -> web.Response:
            return web.json_response({**await request.json(), "status": "pending"}, status=201)

        async def job(request: web.Request) -> web.Response:
            application_id = request.query["application_id"]
            job_id = str(uuid.uuid4())
            return web.json_response(
                {"id": job_id, "application_id": application_id, "status": status}
            )

        bank = web.Application()
        bank.router.add_post("/api/applications", submit)
        bank.router.add_get("/api/jobs", job)
        server = await aiohttp_server(bank)
        return str(server.make_url("/"))

    return start


# --- the API in-process ---

ApiClient = TestClient[web.Request, web.Application]


@pytest.fixture
def api_overrides() -> dict[str, Any]:
    """Settings a test module gives its API; override this fixture to change them."""
    return {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_stores`` run their API on SQLite, then on PostgreSQL."""
    marked = metafunc.definition.get_closest_marker("both_stores") is not None
    if marked and "api_store" in metafunc.fixturenames:
        metafunc.parametrize("api_store", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def api_store(request: pytest.FixtureRequest) -> str:
    """The API's store: SQLite, unless the test is marked ``both_stores``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    redis_url: str,
    stream_prefix: str,
    api_overrides: dict[str, Any],
    api_store: str,
) -> ApiSettings:
    """The API's settings: its own database and stream prefix, quick update reads."""
    database = (
        {"database_url": request.getfixturevalue("database_url")}
        if api_store == "postgresql"
        else {}
    )
    return ApiSettings(
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        db_path=tmp_path / "api.sqlite3",
        update_block=0.02,
        **database,
        **api_overrides,
    )


@pytest.fixture
async def client(redis: Redis, settings: ApiSettings, aiohttp_client: AiohttpClient) -> ApiClient:
    """The API under test, once its startup work is done (so a test's own work is all it sees).

    It stops before the ``redis`` fixture removes the test's keys.
    """
    started = await aiohttp_client(create_app(settings))
    await started_up(started.app)
    return started
