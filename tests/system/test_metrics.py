"""Health, readiness and metrics of both processes, in-process on real Redis and SQLite.

The API runs under aiohttp's test client; the poller runs in-process against
the bank simulator with every schedule scaled down about a hundredfold, and
its health and metrics server is the one ``lendo-poller`` serves.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.metrics import ApiMetrics
from lendo_api.settings import ApiSettings
from lendo_banksim.server import RunningBankSim
from lendo_local.redis_server import free_port
from lendo_poller.bank import BankClient
from lendo_poller.metrics import PollerMetrics
from lendo_poller.ops_server import create_ops_app
from lendo_poller.poller import Poller
from lendo_poller.settings import PollerSettings

Client = TestClient[web.Request, web.Application]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

APPLICATIONS = 6
PENDING = ("lendo_api_applications", frozenset({("status", "pending")}))

FAST_POLLER: dict[str, Any] = {
    "consumer_name": "ops-poller",
    "read_block": 0.05,
    "first_poll_delay": 0.05,
    "poll_interval": 0.02,
    "retry_initial": 0.01,
    "retry_max": 0.05,
    "claim_idle": 5.0,
    "claim_interval": 0.5,
    "shutdown_grace": 0.5,
}


def closed_redis_url() -> str:
    """A Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


async def scrape(client: Client) -> Samples:
    """Every sample of ``/metrics``, keyed by name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


MakeApi = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_api(
    tmp_path: Path, redis_url: str, stream_prefix: str, redis: Redis, aiohttp_client: AiohttpClient
) -> MakeApi:
    async def make(**overrides: Any) -> Client:
        settings = ApiSettings(
            **{
                "redis_url": redis_url,
                "stream_prefix": stream_prefix,
                "db_path": tmp_path / "api.sqlite3",
                "update_block": 0.05,
                "redis_timeout": 0.5,
                **overrides,
            }
        )
        return await aiohttp_client(create_app(settings))

    return make


@pytest.fixture
async def poller_parts(
    redis_url: str, stream_prefix: str, redis: Redis, bank_sim: RunningBankSim
) -> AsyncIterator[tuple[Poller, PollerMetrics]]:
    """A poller wired as ``lendo-poller`` wires it, on this test's streams."""
    settings = PollerSettings(
        redis_url=redis_url, stream_prefix=stream_prefix, bank_url=bank_sim.url, **FAST_POLLER
    )
    metrics = PollerMetrics()
    bank = BankClient.from_settings(settings, on_request=metrics.bank_request_timed)
    poller = Poller(settings, redis, bank)
    metrics.watch(poller, bank)
    yield poller, metrics
    await bank.close()


# --- the API ---


async def test_api_is_alive_and_ready_with_its_database_redis_and_consumer(
    make_api: MakeApi,
) -> None:
    client = await make_api()

    alive = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert alive.status == 200
    assert ready.status == 200
    assert await ready.json() == {"status": "ok"}


async def test_api_is_alive_but_not_ready_without_redis(make_api: MakeApi) -> None:
    client = await make_api(redis_url=closed_redis_url())

    alive = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert alive.status == 200
    assert ready.status == 503
    assert ready.content_type == "application/problem+json"
    problem = await ready.json()
    assert problem["status"] == 503
    assert problem["detail"] == "Not ready: redis failed."
    # Creating still works: the reconciler publishes once Redis is back.
    created = await client.post("/api/applications", json={"first_name": "A", "last_name": "B"})
    assert created.status == 201


async def test_metrics_after_a_run_through_api_poller_and_bank(
    make_api: MakeApi,
    poller_parts: tuple[Poller, PollerMetrics],
    aiohttp_client: AiohttpClient,
    redis: Redis,
) -> None:
    api = await make_api()
    poller, poller_metrics = poller_parts
    ops = await aiohttp_client(create_ops_app(poller, redis, poller_metrics))

    for number in range(APPLICATIONS):
        body = {"first_name": f"Ada{number}", "last_name": "Lovelace"}
        assert (await api.post("/api/applications", json=body)).status == 201
    async with asyncio.timeout(10):
        await poller.run(burst=True)
        while True:  # until the API has applied every update
            api_samples = await scrape(api)
            if api_samples[PENDING] == 0:
                break
            await asyncio.sleep(0.02)
    poller_samples = await scrape(ops)

    assert value(api_samples, "lendo_api_applications_created_total") == APPLICATIONS
    decided = {
        status: value(api_samples, "lendo_api_applications", status=status)
        for status in ("pending", "completed", "rejected")
    }
    assert decided["pending"] == 0
    assert decided["completed"] + decided["rejected"] == APPLICATIONS
    assert value(api_samples, "lendo_api_updates_total", outcome="applied") == APPLICATIONS
    assert value(api_samples, "lendo_api_dead_letters_total") == 0
    assert value(api_samples, "lendo_api_reconciler_rounds_total") >= 1
    assert value(api_samples, "lendo_api_redis_loss_checks_total") >= 1
    pending = {
        dict(labels)["group"]: sample
        for (name, labels), sample in api_samples.items()
        if name == "lendo_stream_pending"
    }
    assert pending == {"api": 0, "pollers": 0}
    assert (
        value(
            api_samples,
            "lendo_api_http_requests_total",
            route="/api/applications",
            method="POST",
            status="201",
        )
        == APPLICATIONS
    )

    assert value(poller_samples, "lendo_poller_in_flight") == 0
    finished = {
        status: value(poller_samples, "lendo_poller_applications_finished_total", status=status)
        for status in ("completed", "rejected")
    }
    assert finished == {status: decided[status] for status in ("completed", "rejected")}
    assert value(poller_samples, "lendo_poller_bank_requests_total", outcome="accepted") == (
        APPLICATIONS
    )
    assert value(poller_samples, "lendo_poller_bank_requests_total", outcome="decided") == (
        APPLICATIONS
    )
    timed = value(poller_samples, "lendo_poller_bank_request_duration_seconds_count", method="POST")
    assert timed == APPLICATIONS
    assert value(poller_samples, "lendo_poller_dead_letters_total") == 0


# --- the poller ---


async def test_poller_is_ready_only_while_its_loop_runs(
    poller_parts: tuple[Poller, PollerMetrics], aiohttp_client: AiohttpClient, redis: Redis
) -> None:
    poller, metrics = poller_parts
    ops = await aiohttp_client(create_ops_app(poller, redis, metrics))

    before = await ops.get("/readyz")
    running = asyncio.create_task(poller.run())
    await asyncio.sleep(0)
    during = await ops.get("/readyz")
    poller.stop()
    await running
    after = await ops.get("/readyz")

    assert (await ops.get("/healthz")).status == 200
    assert before.status == 503
    assert (await before.json())["detail"] == "Not ready: poller_loop failed."
    assert during.status == 200
    assert await during.json() == {"status": "ok"}
    assert after.status == 503


async def test_poller_is_alive_but_not_ready_without_redis(
    stream_prefix: str, bank_sim: RunningBankSim, aiohttp_client: AiohttpClient
) -> None:
    settings = PollerSettings(
        redis_url=closed_redis_url(),
        stream_prefix=stream_prefix,
        bank_url=bank_sim.url,
        **FAST_POLLER,
    )
    redis = Redis.from_url(str(settings.redis_url), socket_connect_timeout=0.5)
    metrics = PollerMetrics()
    bank = BankClient.from_settings(settings, on_request=metrics.bank_request_timed)
    poller = Poller(settings, redis, bank)
    ops = await aiohttp_client(create_ops_app(poller, redis, metrics))
    running = asyncio.create_task(poller.run())
    try:
        alive = await ops.get("/healthz")
        ready = await ops.get("/readyz")
    finally:
        poller.stop()
        await running
        await bank.close()
        await redis.aclose()

    assert alive.status == 200
    assert ready.status == 503
    assert ready.content_type == "application/problem+json"
    assert (await ready.json())["detail"] == "Not ready: redis failed."


async def test_unmatched_paths_share_one_route_label(make_api: MakeApi) -> None:
    client = await make_api()
    for _ in range(3):
        assert (await client.get(f"/no/such/{uuid.uuid4()}")).status == 404

    samples = await scrape(client)

    labels = {
        dict(labels)["route"]
        for (name, labels), _ in samples.items()
        if name == "lendo_api_http_requests_total"
    }
    assert labels == {"unmatched"}
    assert (
        value(
            samples, "lendo_api_http_requests_total", route="unmatched", method="GET", status="404"
        )
        == 3
    )


def http_families(exposition: str, parse: Callable[[str], Iterable[Metric]]) -> list[Any]:
    """The HTTP request families of an exposition, ``_created`` times masked."""
    return [
        (
            family.name,
            family.documentation,
            family.type,
            [
                (s.name, s.labels, 0.0 if s.name.endswith("_created") else s.value)
                for s in family.samples
            ],
        )
        for family in parse(exposition)
        if family.name.startswith("lendo_api_http_request")
    ]


@pytest.mark.parametrize(
    ("encode", "parse"),
    [
        (generate_latest, text_string_to_metric_families),
        (generate_openmetrics, openmetrics_families),
    ],
)
def test_http_traffic_is_exposed_as_prometheus_clients_counter_and_histogram_would(
    encode: Callable[[CollectorRegistry], bytes], parse: Callable[[str], Iterable[Metric]]
) -> None:
    # The API keeps these as plain numbers; dashboards and alerts written against the
    # instruments it had (docs/operations.md) must read the same names, labels and buckets.
    ours = ApiMetrics()
    reference = CollectorRegistry()
    requests = Counter(
        "lendo_api_http_requests",
        "HTTP requests answered, by route template, method and status code.",
        ["route", "method", "status"],
        registry=reference,
    )
    durations = Histogram(
        "lendo_api_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template and method.",
        ["route", "method"],
        registry=reference,
    )
    observed = [
        ("/api/applications", "POST", 201, 0.0049),
        ("/api/applications", "POST", 201, 0.005),  # on a bound: counted in that bucket
        ("/api/applications", "POST", 422, 0.0051),
        ("/api/applications/{id}", "GET", 200, 0.3),
        ("/api/applications/{id}", "GET", 404, 10.0),
        ("unmatched", "GET", 404, 12.5),
        ("/api/applications", "POST", 201, 0.07),
    ]
    for route, method, status, seconds in observed:
        ours.http.observe(route, method, status, seconds)
        requests.labels(route, method, str(status)).inc()
        durations.labels(route, method).observe(seconds)

    expected = http_families(encode(reference).decode(), parse)
    assert {"lendo_api_http_requests", "lendo_api_http_request_duration_seconds"} <= {
        name for name, *_ in expected
    }
    assert http_families(encode(ours.registry).decode(), parse) == expected
