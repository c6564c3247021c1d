"""The ten ways the chaos suite breaks a running system (PostgreSQL's is its own test).

Each chaos coroutine runs alongside the client load, breaks the cluster
until the load is done (and at least a minimum number of times), leaves the
cluster running, and returns how many faults it caused.
"""

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from .harness import SEED, WEBHOOK_TIME_SCALE, Chaos, Cluster

PERIOD = 2.0
"""Seconds between two faults while the load runs."""

BANK_FAULTS = {
    "fail_rate": 0.1,
    "slow_rate": 0.05,
    "slow_delay": 1.0,
    "drop_rate": 0.05,
    "garbage_rate": 0.05,
}
"""10% 5xx, 5% slower than the poller's 0.3 s timeout, 5% dropped, 5% not JSON."""
OUTAGE = 2.5 * 3600 / WEBHOOK_TIME_SCALE
"""How long the webhook receiver stays down: 2.5 hours of the retry schedule."""
SLOW_RECEIVER = 0.1
"""Seconds the receiver takes to answer while the API is killed: kills find POSTs under way."""


async def _repeatedly(
    until: asyncio.Event, action: Callable[[], Awaitable[None]], *, period: float, at_least: int
) -> int:
    """Run ``action`` every ``period`` until ``until`` is set and it ran ``at_least`` times."""
    done = 0
    while done < at_least or not until.is_set():
        await asyncio.sleep(period)
        await action()
        done += 1
    return done


async def kill_the_poller(cluster: Cluster, load_done: asyncio.Event) -> int:
    """kill -9 the poller every period and start it again, with the same consumer name."""
    [poller] = cluster.poller

    async def kill_and_restart() -> None:
        await cluster.kill(poller)
        poller.start()
        cluster.faults.append(time.time())

    return await _repeatedly(load_done, kill_and_restart, period=PERIOD, at_least=2)


async def kill_the_api(cluster: Cluster, load_done: asyncio.Event) -> int:
    """kill -9 the API every period, while it creates and while it consumes updates.

    Besides these kills the API dies by itself after some commits (the crash
    hook in the scenario's environment); both are restarted at once.
    """
    supervised = asyncio.Event()
    restarts = asyncio.create_task(cluster.keep_api_up(supervised))

    async def kill() -> None:
        await cluster.kill(cluster.api)
        cluster.faults.append(time.time())

    await _repeatedly(load_done, kill, period=PERIOD, at_least=2)
    # Once more after the last create, while the last updates are being applied.
    await asyncio.sleep(0.3)
    await kill()
    await asyncio.sleep(0.1)
    supervised.set()
    return await restarts


async def lose_redis(cluster: Cluster, load_done: asyncio.Event) -> int:
    """Restart Redis empty: every stream, group and pending entry is gone.

    The pollers are paused for a moment before, so that the lost streams hold
    submissions nobody has read yet: only the API's database still knows them.
    """
    server = cluster.redis_server
    assert server is not None, "this scenario needs a Redis of its own"

    async def restart_empty() -> None:
        for poller in cluster.poller:
            poller.signal(signal.SIGSTOP)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        cluster.faults.append(time.time())
        for poller in cluster.poller:
            poller.signal(signal.SIGCONT)

    return await _repeatedly(load_done, restart_empty, period=PERIOD, at_least=1)


async def reset_the_bank(cluster: Cluster, load_done: asyncio.Event) -> int:
    """The bank restarts and forgets every application it held (jobs answer 404)."""
    async with aiohttp.ClientSession() as http:

        async def reset() -> None:
            async with http.post(f"{cluster.bank_url}/_sim/reset") as response:
                assert response.status == 200
            cluster.faults.append(time.time())

        return await _repeatedly(load_done, reset, period=PERIOD, at_least=2)


async def faulty_bank(cluster: Cluster, load_done: asyncio.Event) -> int:
    """The bank misbehaves throughout; the faults it injected are counted by the harness."""
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{cluster.bank_url}/_sim/faults", json=BANK_FAULTS) as response,
    ):
        assert response.status == 200
    await load_done.wait()
    return 0


async def kill_one_of_two_pollers(cluster: Cluster, load_done: asyncio.Event) -> int:
    """Two pollers share the group; one is killed for good mid-run, the other takes over."""
    await asyncio.sleep(PERIOD)
    await cluster.kill(cluster.poller[0])
    cluster.faults.append(time.time())
    await load_done.wait()
    return 1


async def refusing_bank(cluster: Cluster, load_done: asyncio.Event) -> int:
    """The bank refuses a fifth of the applications as invalid, at every submission."""
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{cluster.bank_url}/_sim/faults", json={"refuse_rate": 0.2}) as response,
    ):
        assert response.status == 200
    await load_done.wait()
    return 0


async def receiver_down(cluster: Cluster, load_done: asyncio.Event) -> int:
    """The webhook receiver goes away for OUTAGE, then listens again on its port."""
    receiver = cluster.receiver
    await asyncio.sleep(0.5)
    await receiver.stop()
    cluster.receiver_faults.append(time.time())
    await asyncio.sleep(OUTAGE)
    await receiver.start(receiver.port)
    cluster.receiver_faults.append(time.time())
    await load_done.wait()
    return 1


async def first_attempts_fail(cluster: Cluster, load_done: asyncio.Event) -> int:
    """The receiver answers 500 to a fifth of first attempts (the faults counted by the harness)."""
    chance = random.Random(SEED)
    cluster.receiver.answer = lambda attempt: 500 if attempt == 1 and chance.random() < 0.2 else 204
    await load_done.wait()
    return 0


async def kill_the_api_while_delivering(cluster: Cluster, load_done: asyncio.Event) -> int:
    """kill -9 the API while the (slow) receiver holds some of its POSTs, and start it again.

    Each period begins once the new API answers: on a loaded machine its start
    takes seconds, and a period counted from the kill would leave it none to deliver in.
    """
    receiver = cluster.receiver
    receiver.delay = SLOW_RECEIVER

    async def kill_and_restart() -> None:
        # Once all is delivered nothing is under way: kill anyway after a period.
        with contextlib.suppress(TimeoutError):
            await receiver.wait_for(lambda: receiver.in_flight > 0, within=PERIOD)
        await cluster.kill(cluster.api)
        cluster.faults.append(time.time())
        cluster.api.start()
        await asyncio.to_thread(cluster.api.wait_until_ready)

    kills = await _repeatedly(load_done, kill_and_restart, period=PERIOD, at_least=2)
    # Once more after the last create, while the last decisions are being delivered.
    await asyncio.sleep(0.3)
    await kill_and_restart()
    return kills + 1


@dataclass(frozen=True)
class Scenario:
    """A chaos coroutine and the cluster it needs."""

    name: str
    chaos: Chaos
    pollers: int = 1
    api_env: dict[str, str] = field(default_factory=dict)
    own_redis: bool = False


SCENARIOS = (
    Scenario("1 poller killed (-9) repeatedly", kill_the_poller),
    Scenario(
        "2 API killed (-9) after commit and while consuming",
        kill_the_api,
        # About one create in thirty dies between its commit and its publish.
        api_env={"LENDO_FAULT_CRASH_AFTER_COMMIT": "0.03"},
    ),
    Scenario("3 Redis restarted empty", lose_redis, own_redis=True),
    Scenario("4 bank restarted (forgets all)", reset_the_bank),
    Scenario("5 bank 5xx, slow, dropped, non-JSON", faulty_bank),
    Scenario("6 one of two pollers killed", kill_one_of_two_pollers, pollers=2),
    Scenario("7 bank refuses a fifth as invalid", refusing_bank),
    Scenario("9 webhook receiver down for 2.5 h (of the retry schedule)", receiver_down),
    Scenario("10 webhook receiver answers 500 to a fifth of first attempts", first_attempts_fail),
    Scenario(
        "11 API killed (-9) while delivering webhooks",
        kill_the_api_while_delivering,
        # Enough POSTs at once for the slow receiver to keep up with the load.
        api_env={"LENDO_WEBHOOK_ENDPOINT_CONCURRENCY": "16"},
    ),
)
