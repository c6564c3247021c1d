"""The chaos harness: the three real processes, a client load, and the final audit.

A :class:`Cluster` runs ``lendo-bank-sim``, ``lendo-api`` and one or more
``lendo-poller`` processes with the production schedule scaled down about a
hundredfold. :func:`run_scenario` creates applications at a steady rate
while a scenario's chaos coroutine breaks things, waits until no application
is pending, and audits the API's store against the simulator's decisions.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import EmbeddedRedis, free_port

SCALED_TIMINGS = {
    "LENDO_FIRST_POLL_DELAY": "0.1",
    "LENDO_POLL_INTERVAL": "0.02",
    "LENDO_RETRY_INITIAL": "0.01",
    "LENDO_RETRY_MAX": "0.3",
    "LENDO_BANK_TIMEOUT": "0.3",
    "LENDO_BANK_CONNECT_TIMEOUT": "0.3",
    "LENDO_CLAIM_IDLE": "2",
    "LENDO_CLAIM_INTERVAL": "0.5",
    "LENDO_READ_BLOCK": "0.1",
    "LENDO_UPDATE_BLOCK": "0.1",
    "LENDO_RECONCILE_INTERVAL": "0.5",
    "LENDO_REPUBLISH_AFTER": "3",
    "LENDO_PUBLISH_TIMEOUT": "0.5",
    "LENDO_REDIS_TIMEOUT": "1",
    "LENDO_TRIM_INTERVAL": "0.5",
    "LENDO_SHUTDOWN_GRACE": "1",
    "LENDO_LOG_LEVEL": "WARNING",
    "LENDO_SIM_LOG_LEVEL": "WARNING",
}
"""Decisions in 0.1-0.5 s instead of 5-20 s, and every other timing to match."""

BANK_DELAYS = ("--min-delay", "0.1", "--max-delay", "0.5")
SEED = 4242
CONCURRENT_CREATES = 16


@dataclass
class Report:
    """What one scenario did and what it left behind; one row of the table."""

    scenario: str
    applications: int
    faults: int
    seconds_to_final: float
    requests_per_application: float
    duplicates_at_bank: int
    dead_letters: int
    lost: int
    wrong: int

    HEADER = (
        "| scenario | applications | kills / faults | time to all-final (s) "
        "| bank requests per application | duplicates at the bank | dead letters "
        "| lost | wrong |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.applications} | {self.faults} "
            f"| {self.seconds_to_final:.1f} | {self.requests_per_application:.2f} "
            f"| {self.duplicates_at_bank} | {self.dead_letters} | {self.lost} | {self.wrong} |"
        )


@dataclass
class Cluster:
    """The system's processes on one Redis; restartable one by one, as in production."""

    workdir: Path
    redis_url: str
    prefix: str
    pollers: int = 1
    api_env: dict[str, str] = field(default_factory=dict)
    redis_server: EmbeddedRedis | None = None
    """The Redis of :attr:`redis_url` when the cluster has its own, to restart it."""
    api_port: int = field(default_factory=free_port)
    bank_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        env = {
            "LENDO_REDIS_URL": self.redis_url,
            "LENDO_STREAM_PREFIX": self.prefix,
            "LENDO_PORT": str(self.api_port),
            "LENDO_DB_PATH": str(self.workdir / "lendo.sqlite3"),
            "LENDO_BANK_URL": self.bank_url,
            **SCALED_TIMINGS,
        }
        bank_args = ["--port", str(self.bank_port), "--seed", str(SEED), *BANK_DELAYS]
        log = self.workdir
        self.bank = Service("lendo-bank-sim", bank_args, env, log / "bank.log")
        self.api = Service(
            "lendo-api",
            [],
            {**env, **self.api_env, "LENDO_CONSUMER_NAME": "api-1"},
            log / "api.log",
        )
        self.poller_ports = [free_port() for _ in range(self.pollers)]
        self.poller = [
            Service(
                "lendo-poller",
                [],
                {
                    **env,
                    "LENDO_CONSUMER_NAME": f"chaos-poller-{number}",
                    "LENDO_METRICS_PORT": str(port),
                },
                log / f"poller-{number}.log",
            )
            for number, port in enumerate(self.poller_ports)
        ]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def bank_url(self) -> str:
        return f"http://127.0.0.1:{self.bank_port}"

    @property
    def services(self) -> list[Service]:
        return [self.bank, self.api, *self.poller]

    async def start(self) -> None:
        for service in self.services:
            service.start()
        await self.up()

    async def up(self) -> None:
        """Return once every running process answers (a restarted one may still be starting)."""
        probes = [
            (self.bank, f"{self.bank_url}/_sim/stats"),
            (self.api, f"{self.api_url}/healthz"),
            *(
                (poller, f"http://127.0.0.1:{port}/healthz")
                for poller, port in zip(self.poller, self.poller_ports, strict=True)
            ),
        ]
        for service, url in probes:
            if service.running:
                await asyncio.to_thread(wait_for_http, url, 20, service)

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process still running; the exit codes of those, by service.

        Call :meth:`up` first: a process signalled before it set up its handlers
        dies of the signal instead of shutting down.
        """
        codes: dict[str, int | None] = {}
        for number, service in enumerate(self.services):
            if service.running:
                codes[f"{service.name}-{number}"] = service.stop()
        return codes

    @staticmethod
    async def kill(service: Service) -> None:
        await asyncio.to_thread(service.kill)

    async def keep_api_up(self, until: asyncio.Event) -> int:
        """Restart the API whenever it dies, until ``until`` is set; return the restarts."""
        restarts = 0
        while not until.is_set():
            if not self.api.running:
                restarts += 1
                self.api.start()
            await asyncio.sleep(0.05)
        return restarts


Chaos = Callable[[Cluster, asyncio.Event], Coroutine[Any, Any, int]]
"""Breaks a running cluster until the event is set (the load is done); returns the faults."""


async def create_all(
    http: aiohttp.ClientSession, api_url: str, count: int, rate: float
) -> set[str]:
    """Create ``count`` applications at ``rate`` per second, each retried until it succeeds.

    Every create carries an Idempotency-Key, as a careful client's would: a
    retry after a crash or a lost answer finds the first attempt's application
    instead of creating a second one, so the ids returned are all that exist.
    """
    slots = asyncio.Semaphore(CONCURRENT_CREATES)
    started = time.monotonic()

    async def create(number: int) -> str:
        await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
        body = {"first_name": f"Chaos{number}", "last_name": "Monkey"}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        async with slots:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.post(
                        f"{api_url}/api/applications", json=body, headers=headers
                    ) as response:
                        if response.status in (200, 201):
                            created: dict[str, Any] = await response.json()
                            return str(created["id"])
                await asyncio.sleep(0.05)

    return set(await asyncio.gather(*(create(number) for number in range(count))))


async def _get_json(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    """GET ``url`` until it answers 200 (the API may be restarting)."""
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, params=params) as response:
                if response.status == 200:
                    return await response.json()
        await asyncio.sleep(0.1)


async def stored_statuses(http: aiohttp.ClientSession, api_url: str) -> dict[str, str]:
    """Every application in the API's store, id to status, through the public listing."""
    statuses: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = await _get_json(http, f"{api_url}/api/applications", **params)
        statuses.update((item["id"], item["status"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return statuses


async def wait_until_none_pending(http: aiohttp.ClientSession, api_url: str) -> None:
    while True:
        page = await _get_json(http, f"{api_url}/api/applications", status="pending", limit="1")
        if not page["items"]:
            return
        await asyncio.sleep(0.2)


async def wait_until_trimmed(redis: Redis, streams: tuple[str, ...]) -> None:
    """Return once every stream holds at most one entry (the last one delivered)."""
    while True:
        lengths = [await redis.xlen(stream) for stream in streams]
        if max(lengths) <= 1:
            return
        await asyncio.sleep(0.2)


async def run_scenario(
    name: str, cluster: Cluster, chaos: Chaos, *, applications: int, rate: float, deadline: float
) -> Report:
    """Load the cluster while ``chaos`` runs; wait for every application to be final; audit."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        load_done = asyncio.Event()
        chaos_task = asyncio.create_task(chaos(cluster, load_done))
        started = time.monotonic()
        try:
            created = await create_all(http, cluster.api_url, applications, rate)
        finally:
            load_done.set()
        caused = await chaos_task
        async with asyncio.timeout(deadline):
            await wait_until_none_pending(http, cluster.api_url)
        seconds = time.monotonic() - started
        stored = await stored_statuses(http, cluster.api_url)
        decisions: dict[str, str] = await _get_json(http, f"{cluster.bank_url}/_sim/decisions")
        requests: dict[str, int] = await _get_json(
            http, f"{cluster.bank_url}/_sim/requests_per_application"
        )
        stats = await _get_json(http, f"{cluster.bank_url}/_sim/stats")
    redis = Redis.from_url(cluster.redis_url)
    try:
        dead_letters = await redis.xlen(f"{cluster.prefix}dead-letters")
        async with asyncio.timeout(deadline):
            await wait_until_trimmed(
                redis, (f"{cluster.prefix}applications", f"{cluster.prefix}updates")
            )
    finally:
        await redis.aclose()
    assert set(stored) == created, "the store holds exactly the applications the clients created"
    return Report(
        scenario=name,
        applications=len(created),
        faults=caused + sum(stats["faults"].values()),
        seconds_to_final=seconds,
        requests_per_application=sum(requests.get(id, 0) for id in created) / len(created),
        duplicates_at_bank=stats["duplicate_submissions"],
        dead_letters=dead_letters,
        lost=sum(1 for id in created if stored.get(id) not in ("completed", "rejected")),
        wrong=sum(
            1
            for id in created
            if stored.get(id) in ("completed", "rejected") and stored[id] != decisions.get(id)
        ),
    )
