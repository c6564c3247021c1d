"""The chaos harness: the three real processes, a client load, and the final audit.

A :class:`Cluster` runs ``lendo-bank-sim``, ``lendo-api`` and one or more
``lendo-poller`` processes, every timing :data:`TIME_SCALE` times faster.
:func:`run_scenario` creates applications at a steady rate while a scenario's
chaos coroutine breaks things, waits until no application is pending, and
audits the API's store against the simulator's decisions.
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

from lendo_local.processes import Service
from lendo_local.redis_server import EmbeddedRedis
from lendo_local.system import LocalSystem

TIME_SCALE = 40
"""Decisions in 0.125-0.5 s instead of 5-20 s, and every other timing to match."""
QUIET = {"LENDO_LOG_LEVEL": "WARNING", "LENDO_SIM_LOG_LEVEL": "WARNING"}

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

    def __post_init__(self) -> None:
        self.system = LocalSystem(
            self.workdir,
            self.redis_url,
            time_scale=TIME_SCALE,
            env={"LENDO_STREAM_PREFIX": self.prefix, **QUIET},
        )

    async def start(self) -> None:
        self.bank = self.system.bank_sim("--seed", str(SEED), wait=False)
        self.api = self.system.api({**self.api_env, "LENDO_CONSUMER_NAME": "api-1"}, wait=False)
        self.poller = [
            self.system.poller(f"chaos-poller-{number}", wait=False)
            for number in range(self.pollers)
        ]
        await self.up()

    @property
    def api_url(self) -> str:
        return self.api.base_url

    @property
    def bank_url(self) -> str:
        return self.bank.base_url

    async def up(self) -> None:
        """Return once every running process answers (a restarted one may still be starting)."""
        for service in self.system.services:
            if service.running:
                await asyncio.to_thread(service.wait_until_ready)

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process still running; the exit codes of those, by service.

        Call :meth:`up` first: a process signalled before it set up its handlers
        dies of the signal instead of shutting down.
        """
        return self.system.stop()

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
