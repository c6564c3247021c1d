"""Two API replicas on one PostgreSQL, each killed (-9) in turn, PostgreSQL restarted.

Every application still reaches exactly the bank's decision and reads the same
from both replicas; every event reaches the webhook receiver, whichever replica
sends it, and an SSE client taking turns between the replicas misses none. The
PostgreSQL is one this test starts, never the machine's.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from lendo_local.processes import Service
from lendo_local.system import LocalSystem
from tests.postgres_server import TemporaryPostgres, scratch_database
from tests.webhook_receiver import WebhookReceiver

from .harness import (
    QUIET,
    SEED,
    TIME_SCALE,
    WEBHOOK_ENV,
    Report,
    audit_push,
    lateness,
    register_webhook,
    stored,
    wait_until_none_pending,
)
from .sse import EventFollower
from .test_chaos import APPLICATIONS, DEADLINE, RATE

NAME = "8 PostgreSQL: 2 APIs killed (-9) in turn, database restarted"
PERIOD = 2.0
"""Seconds between two kills, of each replica in turn."""
CONCURRENT_CREATES = 16


@pytest.fixture
def postgres() -> Iterator[TemporaryPostgres]:
    with TemporaryPostgres() as server:
        yield server


async def create_all(http: aiohttp.ClientSession, replicas: list[Service]) -> set[str]:
    """Create APPLICATIONS at RATE, alternating replicas as a load balancer would.

    Each create carries an Idempotency-Key and is retried on the other replica
    until one answers, so a create lost to a kill or to the database restart is
    found again, on whichever replica, instead of made twice.
    """
    slots = asyncio.Semaphore(CONCURRENT_CREATES)
    started = time.monotonic()

    async def create(number: int) -> str:
        await asyncio.sleep(max(0.0, started + number / RATE - time.monotonic()))
        body = {"first_name": f"Chaos{number}", "last_name": "Monkey"}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        attempt = number
        async with slots:
            while True:
                url = f"{replicas[attempt % 2].base_url}/api/applications"
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.post(url, json=body, headers=headers) as response:
                        if response.status in (200, 201):
                            created: dict[str, Any] = await response.json()
                            return str(created["id"])
                attempt += 1
                await asyncio.sleep(0.05)

    return set(await asyncio.gather(*(create(number) for number in range(APPLICATIONS))))


async def break_things(
    replicas: list[Service], postgres: TemporaryPostgres, load_done: asyncio.Event, at: list[float]
) -> int:
    """kill -9 a replica every PERIOD, each in turn (restarting it), and restart PostgreSQL once.

    Appends to ``at`` when (``time.time()``) each fault happened.
    """
    faults = 0
    kills = 0
    restarted_database = False
    while faults < 2 or not load_done.is_set():
        await asyncio.sleep(PERIOD)
        victim = replicas[kills % 2]
        await asyncio.to_thread(victim.kill)
        at.append(time.time())
        victim.start()
        kills += 1
        faults += 1
        if not restarted_database:
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(postgres.start)
            at.append(time.time())
            restarted_database = True
            faults += 1
    # Once more after the last create, while the last updates are being applied.
    await asyncio.sleep(0.3)
    victim = replicas[kills % 2]
    await asyncio.to_thread(victim.kill)
    at.append(time.time())
    victim.start()
    return faults + 1


@pytest.mark.timeout(60 + 2 * DEADLINE)
async def test_two_replicas_on_postgresql_survive_kills_and_a_database_restart(
    tmp_path: Path,
    redis_url: str,
    stream_prefix: str,
    redis: Redis,
    postgres: TemporaryPostgres,
    chaos_reports: list[Report],
) -> None:
    with scratch_database(postgres.url) as database_url:
        system = LocalSystem(
            tmp_path,
            redis_url,
            time_scale=TIME_SCALE,
            env={"LENDO_STREAM_PREFIX": stream_prefix, "LENDO_DATABASE_URL": database_url, **QUIET},
        )
        receiver = WebhookReceiver()
        try:
            await receiver.start()
            bank = system.bank_sim("--seed", str(SEED))
            # Default consumer names (host and pid): a restarted replica is a new
            # consumer, and what the killed one read is taken over, not resumed.
            replicas = [system.api(WEBHOOK_ENV, log=f"lendo-api-{n}") for n in (1, 2)]
            system.poller("chaos-poller-1")
            report = await _run(replicas, bank, postgres, redis, stream_prefix, receiver)
            await asyncio.to_thread(replicas[0].wait_until_ready)
        finally:
            codes = system.stop()
            await receiver.stop()
    chaos_reports.append(report)

    assert report.applications == APPLICATIONS
    assert (report.lost, report.wrong, report.dead_letters) == (0, 0, 0)
    assert report.push is not None
    push = report.push
    assert (push.undelivered, push.bad_signatures) == (0, 0)
    assert (push.sse_missed, push.sse_repeated) == (0, 0)
    assert set(codes.values()) == {0}


async def _run(
    replicas: list[Service],
    bank: Service,
    postgres: TemporaryPostgres,
    redis: Redis,
    prefix: str,
    receiver: WebhookReceiver,
) -> Report:
    # Each reconnect goes to the other replica, the killed one half the time.
    follower = EventFollower(lambda connection: replicas[connection % 2].base_url, seed=SEED)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        await register_webhook(http, replicas[1].base_url, receiver)
        follower.start()
        try:
            load_done = asyncio.Event()
            fault_times: list[float] = []
            chaos = asyncio.create_task(break_things(replicas, postgres, load_done, fault_times))
            started = time.monotonic()
            try:
                created = await create_all(http, replicas)
            finally:
                load_done.set()
            faults = await chaos
            # The last one killed is starting again: read once both answer.
            for replica in replicas:
                await asyncio.to_thread(replica.wait_until_ready)
            survivor = replicas[1].base_url
            async with asyncio.timeout(DEADLINE):
                await wait_until_none_pending(http, survivor)
            seconds = time.monotonic() - started
            kept = await stored(http, survivor)
            push = await audit_push(
                NAME,
                http,
                survivor,
                kept,
                receiver=receiver,
                follower=follower,
                faults=fault_times,
                deadline=DEADLINE,
            )
        finally:
            await follower.stop()
        also = await stored(http, replicas[0].base_url)
        async with http.get(f"{bank.base_url}/_sim/decisions") as response:
            decisions: dict[str, str] = await response.json()
        async with http.get(f"{bank.base_url}/_sim/decision_times") as response:
            decided_at: dict[str, float] = await response.json()
        async with http.get(f"{bank.base_url}/_sim/requests_per_application") as response:
            requests: dict[str, int] = await response.json()
        async with http.get(f"{bank.base_url}/_sim/stats") as response:
            stats = await response.json()
    assert set(kept) == created, "the store holds exactly the applications the clients created"
    assert also == kept, "both replicas read the same"
    stored_status = {id: application["status"] for id, application in kept.items()}
    return Report(
        scenario=NAME,
        applications=len(created),
        faults=faults,
        seconds_to_final=seconds,
        requests_per_application=sum(requests.get(id, 0) for id in created) / len(created),
        duplicates_at_bank=stats["duplicate_submissions"],
        dead_letters=await redis.xlen(f"{prefix}dead-letters"),
        lost=sum(1 for id in created if stored_status[id] not in ("completed", "rejected")),
        wrong=sum(
            1
            for id in created
            if stored_status[id] in ("completed", "rejected")
            and stored_status[id] != decisions.get(id)
        ),
        recovered_within=max(lateness(kept[id], decided_at.get(id), []) for id in created),
        push=push,
    )
