"""The poller in-process against real Redis and the bank simulator over real HTTP.

Every schedule is scaled down about a hundredfold: the simulator decides
within 0.05-0.2 s, the poller polls every 0.02 s.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog
from prometheus_client import generate_latest
from redis.asyncio import Redis

from lendo_banksim.config import SimConfig
from lendo_banksim.server import RunningBankSim, running_bank_sim
from lendo_local.redis_server import EmbeddedRedis
from lendo_poller.bank import BankClient
from lendo_poller.metrics import PollerMetrics
from lendo_poller.poller import Poller
from lendo_poller.settings import PollerSettings
from lendo_streams import (
    POLLER_GROUP,
    StreamNames,
    SubmissionMessage,
    UpdateMessage,
    decode,
    encode,
    ensure_group,
)
from lendo_streams.dead_letters import REASON_FIELD, SOURCE_ID_FIELD

DEADLINE = 10.0
"""Longest any poller run may take in these tests; each needs well under a second."""

FAST: dict[str, Any] = {
    "consumer_name": "poller-1",
    "read_block": 0.05,
    "first_poll_delay": 0.05,
    "poll_interval": 0.02,
    "retry_initial": 0.01,
    "retry_max": 0.05,
    "bank_timeout": 0.1,
    "bank_connect_timeout": 0.5,
    "claim_idle": 5.0,
    "claim_interval": 0.5,
    "shutdown_grace": 0.5,
}
"""Poller settings scaled to the simulator's 0.05-0.4 s decisions."""

MakePoller = Callable[..., tuple[Poller, BankClient]]


@pytest.fixture
async def punctual_sim() -> AsyncIterator[RunningBankSim]:
    """A simulator deciding every application 0.1 s after its submission."""
    async with running_bank_sim(SimConfig(min_delay=0.1, max_delay=0.1)) as sim:
        yield sim


@pytest.fixture
async def slow_sim() -> AsyncIterator[RunningBankSim]:
    """A simulator deciding within 0.3-0.4 s: time enough to stop a poller mid-flight."""
    async with running_bank_sim(SimConfig(min_delay=0.3, max_delay=0.4)) as sim:
        yield sim


@pytest.fixture
async def make_poller(
    redis_url: str, stream_prefix: str, redis: Redis
) -> AsyncIterator[MakePoller]:
    """Builds pollers on this test's streams against a simulator; closes their bank clients."""
    banks: list[BankClient] = []

    def make(sim: RunningBankSim, **overrides: Any) -> tuple[Poller, BankClient]:
        settings = PollerSettings(
            redis_url=redis_url,
            stream_prefix=stream_prefix,
            bank_url=sim.url,
            **(FAST | overrides),
        )
        bank = BankClient.from_settings(settings)
        banks.append(bank)
        return Poller(settings, redis, bank), bank

    yield make
    for bank in banks:
        await bank.close()


async def submit(redis: Redis, streams: StreamNames, count: int) -> list[SubmissionMessage]:
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    messages = [
        SubmissionMessage(
            id=uuid.uuid4(), first_name="Åsa", last_name="Ñúñez", request_id=f"req-{n}"
        )
        for n in range(count)
    ]
    for message in messages:
        await redis.xadd(streams.applications, encode(message))
    return messages


async def add(redis: Redis, stream: str, fields: dict[bytes, bytes]) -> bytes:
    entry_id: Any = await redis.xadd(stream, dict(fields.items()))
    return bytes(entry_id)


async def entries(redis: Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    found: Any = await redis.xrange(stream)
    return [(entry_id, fields) for entry_id, fields in found]


async def updates(redis: Redis, streams: StreamNames) -> list[UpdateMessage]:
    return [decode(UpdateMessage, fields) for _, fields in await entries(redis, streams.updates)]


async def pending(redis: Redis, streams: StreamNames) -> dict[bytes, bytes]:
    """Entry id → consumer, for every unacknowledged submission entry."""
    rows: Any = await redis.xpending_range(streams.applications, POLLER_GROUP, "-", "+", 10_000)
    return {row["message_id"]: row["consumer"] for row in rows}


async def drain(poller: Poller) -> None:
    async with asyncio.timeout(DEADLINE):
        await poller.run(burst=True)


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


def assert_decided_as_the_bank_did(
    sent: list[SubmissionMessage], published: list[UpdateMessage], sim: RunningBankSim
) -> None:
    decisions = sim.state.decisions()
    by_id = {update.id: update for update in published}
    assert by_id.keys() == {message.id for message in sent}
    for message in sent:
        assert by_id[message.id].status == decisions[message.id]
        assert by_id[message.id].request_id == message.request_id


async def test_every_application_gets_the_banks_decision_and_is_acked(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 40)
    poller, _ = make_poller(bank_sim)

    await drain(poller)

    published = await updates(redis, streams)
    assert len(published) == len(sent)
    assert_decided_as_the_bank_did(sent, published, bank_sim)
    assert await pending(redis, streams) == {}
    assert poller.stats.finished == len(sent)
    assert bank_sim.state.stats().submissions == len(sent)


async def test_applications_decided_together_are_all_published_acked_and_counted(
    redis: Redis, streams: StreamNames, punctual_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 300)
    # The simulator shares this event loop: with the default 200 requests at once,
    # each would outlast the 0.1 s bank timeout, and every retry too.
    poller, _ = make_poller(punctual_sim, bank_max_connections=20)

    await drain(poller)

    assert_decided_as_the_bank_did(sent, await updates(redis, streams), punctual_sim)
    assert await pending(redis, streams) == {}
    decisions = list(punctual_sim.state.decisions().values())
    assert (poller.stats.completed, poller.stats.rejected) == (
        decisions.count("completed"),
        decisions.count("rejected"),
    )
    assert poller.stats.update_transactions <= poller.stats.finished == len(sent)


async def test_a_bank_restart_mid_flight_leads_to_resubmission(
    redis: Redis, streams: StreamNames, slow_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 20)
    poller, _ = make_poller(slow_sim)
    running = asyncio.create_task(drain(poller))

    await eventually(lambda: slow_sim.state.stats().polls >= len(sent))
    assert slow_sim.state.reset() == len(sent)
    await running

    assert slow_sim.state.stats().not_found >= len(sent)
    assert slow_sim.state.stats().submissions == 2 * len(sent)
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), slow_sim)
    assert await pending(redis, streams) == {}


async def test_an_application_the_bank_already_has_is_polled_at_once(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 10)
    # As if a poller that died, or a Redis that lost its entries, had submitted them already.
    earlier = BankClient(bank_sim.url, timeout=1.0, connect_timeout=1.0, max_connections=4)
    try:
        for message in sent:
            await earlier.submit(message)
    finally:
        await earlier.close()
    await eventually(lambda: all(bank_sim.state.job(m.id).status != "pending" for m in sent))
    before = bank_sim.state.requests_per_application()
    # A first poll delay far beyond the test's deadline: only a poll at once can finish.
    poller, bank = make_poller(bank_sim, first_poll_delay=10 * DEADLINE)

    await drain(poller)

    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)
    after = bank_sim.state.requests_per_application()
    # One resubmission ("already used") and one poll each: no request more than before.
    assert {m.id: after[m.id] - before[m.id] for m in sent} == dict.fromkeys(
        (m.id for m in sent), 2
    )
    assert bank.stats.already_known == len(sent)


async def test_a_fresh_submission_still_waits_the_first_poll_delay(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 10)
    # The simulator decides within 0.2 s: a first poll after 0.3 s finds every decision.
    poller, bank = make_poller(bank_sim, first_poll_delay=0.3)

    await drain(poller)

    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)
    assert bank_sim.state.requests_per_application() == dict.fromkeys((m.id for m in sent), 2)
    assert (bank.stats.accepted, bank.stats.pending) == (len(sent), 0)


async def test_an_application_the_bank_keeps_refusing_is_failed_with_its_reason(
    redis: Redis, streams: StreamNames, make_poller: MakePoller
) -> None:
    async with running_bank_sim(
        SimConfig(min_delay=0.05, max_delay=0.2, refuse_rate=0.5, seed=7)
    ) as sim:
        sent = await submit(redis, streams, 20)
        poller, bank = make_poller(sim, invalid_attempts=3)
        metrics = PollerMetrics()
        metrics.watch(poller, bank)

        await drain(poller)

        refused = sim.state.refused()
        assert 0 < len(refused) < len(sent)
        by_id = {update.id: update for update in await updates(redis, streams)}
        assert by_id.keys() == {message.id for message in sent}
        for message in sent:
            update = by_id[message.id]
            if message.id in refused:
                assert (update.status, update.failure_reason) == (
                    "failed",
                    "the request payload is not valid.",
                )
                assert update.request_id == message.request_id
            else:
                assert update.status == sim.state.decisions()[message.id]
                assert update.failure_reason is None
        requests = sim.state.requests_per_application()
        assert {app_id: requests[app_id] for app_id in refused} == dict.fromkeys(refused, 3)
        assert await entries(redis, streams.dead_letters) == []
        assert await pending(redis, streams) == {}
        assert poller.stats.failed == len(refused)
        exposed = generate_latest(metrics.registry).decode()
        assert f'lendo_poller_applications_finished_total{{status="failed"}} {len(refused)}.0' in (
            exposed
        )


async def test_a_failing_and_slow_bank_only_delays_applications(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    faults = {
        "fail_rate": 0.3,
        "drop_rate": 0.1,
        "garbage_rate": 0.1,
        "slow_rate": 0.1,
        "slow_delay": 0.15,
    }
    bank_sim.state.set_faults(faults)
    sent = await submit(redis, streams, 30)
    poller, bank = make_poller(bank_sim)

    await drain(poller)

    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)
    assert await pending(redis, streams) == {}
    injected = bank_sim.state.stats().faults
    assert all(count > 0 for count in injected.values())
    # Every 5xx and garbled answer was a retry. (Not every drop: aiohttp itself
    # resends a GET whose reused keep-alive connection was closed under it.)
    assert bank.stats.unavailable >= injected["fail"] + injected["garbage"]


async def test_no_more_than_max_in_flight_applications_are_followed_at_once(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 40)
    poller, _ = make_poller(bank_sim, max_in_flight=6, read_batch=100)
    in_flight: list[int] = []
    held: list[int] = []

    async def watch() -> None:
        while True:
            in_flight.append(poller.in_flight)
            held.append(len(await pending(redis, streams)))
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    await drain(poller)
    watcher.cancel()

    assert max(in_flight) == 6
    assert max(held) <= 6
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)


async def test_malformed_entries_go_to_the_dead_letters(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 2)
    not_json = await add(redis, streams.applications, {b"data": b"{not json"})
    no_data = await add(redis, streams.applications, {b"payload": b"?"})
    poller, _ = make_poller(bank_sim)

    await drain(poller)

    dead = {
        fields[SOURCE_ID_FIELD]: fields for _, fields in await entries(redis, streams.dead_letters)
    }
    assert dead.keys() == {not_json, no_data}
    assert dead[not_json][b"data"] == b"{not json"
    assert dead[no_data][b"payload"] == b"?"
    assert all(fields[REASON_FIELD] for fields in dead.values())
    assert poller.stats.dead_lettered == 2
    assert await pending(redis, streams) == {}
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)


async def test_the_dead_letters_keep_about_the_newest_maxlen_yet_every_one_is_counted(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    written = [await add(redis, streams.applications, {b"data": b"{not json"}) for _ in range(350)]
    poller, _ = make_poller(bank_sim, dead_letter_maxlen=100, read_batch=10)

    await drain(poller)

    kept = [fields[SOURCE_ID_FIELD] for _, fields in await entries(redis, streams.dead_letters)]
    # MAXLEN ~ trims whole nodes of 100 entries: between 100 and 199 are left.
    assert 100 <= len(kept) < 200
    assert kept == written[-len(kept) :]  # the oldest went first
    assert poller.stats.dead_lettered == len(written)
    assert await pending(redis, streams) == {}


async def test_an_entry_delivered_too_often_goes_to_the_dead_letters(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    [message] = await submit(redis, streams, 1)
    # A consumer that crashes on this entry, again and again.
    await redis.xreadgroup(POLLER_GROUP, "crashing", {streams.applications: ">"})
    for _ in range(2):
        await redis.xreadgroup(POLLER_GROUP, "crashing", {streams.applications: "0"})
    await asyncio.sleep(0.05)
    poller, _ = make_poller(bank_sim, max_deliveries=3, claim_idle=0.04, claim_interval=0.02)

    await drain(poller)

    [(_, fields)] = await entries(redis, streams.dead_letters)
    assert decode(SubmissionMessage, fields) == message
    assert fields[REASON_FIELD] == b"delivered 4 times"
    assert await pending(redis, streams) == {}
    assert await updates(redis, streams) == []
    assert bank_sim.state.stats().submissions == 0


async def test_an_unknown_job_status_is_logged_counted_and_never_polled_for_ever(
    redis_url: str,
    stream_prefix: str,
    redis: Redis,
    streams: StreamNames,
    bank_answering: Callable[[str], Awaitable[str]],
) -> None:
    [message] = await submit(redis, streams, 1)
    settings = PollerSettings(
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        bank_url=await bank_answering("on_hold"),
        **(FAST | {"max_deliveries": 1}),
    )
    bank = BankClient.from_settings(settings)
    metrics = PollerMetrics()
    try:
        first = Poller(settings, redis, bank)
        metrics.watch(first, bank)
        with structlog.testing.capture_logs() as logs:
            await drain(first)
        left_pending = await pending(redis, streams)
        # Delivered again, as after a crash: one delivery more than max_deliveries.
        await drain(Poller(settings, redis, bank))
    finally:
        await bank.close()

    assert [(log["event"], log["status"]) for log in logs if log["log_level"] == "warning"] == [
        ("bank_job_status_unknown", "on_hold")
    ]
    assert "Åsa" not in repr(logs)
    assert list(left_pending.values()) == [b"poller-1"]
    assert bank.stats.unknown_status >= 1
    assert (
        metrics.registry.get_sample_value(
            "lendo_poller_bank_requests_total", {"outcome": "unknown_status"}
        )
        == bank.stats.unknown_status
    )
    [(_, fields)] = await entries(redis, streams.dead_letters)
    assert decode(SubmissionMessage, fields) == message
    assert await updates(redis, streams) == []
    assert await pending(redis, streams) == {}


async def test_a_duplicate_of_an_application_in_flight_gets_no_second_actor(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 1)
    await redis.xadd(streams.applications, encode(sent[0]))
    poller, _ = make_poller(bank_sim)

    await drain(poller)

    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)
    assert poller.stats.duplicates == 1
    assert bank_sim.state.stats().duplicate_submissions == 0
    assert await pending(redis, streams) == {}


async def stop_mid_flight(poller: Poller, sim: RunningBankSim, count: int) -> None:
    """Run ``poller`` until the bank holds all ``count`` applications, then stop it."""
    running = asyncio.create_task(poller.run())

    await eventually(lambda: sim.state.stats().submissions == count)
    poller.stop()
    async with asyncio.timeout(FAST["shutdown_grace"] + 0.2):
        await running


async def test_stop_hands_entries_back_and_another_poller_takes_them_over(
    redis: Redis, streams: StreamNames, slow_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 20)
    first, _ = make_poller(slow_sim)
    await stop_mid_flight(first, slow_sim, len(sent))

    assert list((await pending(redis, streams)).values()) == [b"poller-1"] * len(sent)
    assert await updates(redis, streams) == []

    # claim_idle far beyond the test's deadline: the stopped poller's sign-off (heartbeat
    # deleted, entries released) is what lets the second one take over.
    second, _ = make_poller(slow_sim, consumer_name="poller-2", claim_idle=60.0)
    await drain(second)

    assert second.stats.finished == second.taken_over == len(sent)
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), slow_sim)
    assert await pending(redis, streams) == {}


HEARTBEATS: dict[str, Any] = {
    "heartbeat_interval": 0.05,
    "heartbeat_ttl": 0.15,
    "claim_idle": 60.0,
}
"""Heartbeats scaled down, XAUTOCLAIM out of the picture: takeovers come from heartbeats."""


async def consumers(redis: Redis, streams: StreamNames) -> set[bytes]:
    infos: Any = await redis.xinfo_consumers(streams.applications, POLLER_GROUP)
    return {info["name"] for info in infos}


async def test_a_dead_pollers_entries_are_taken_over_once_its_heartbeat_expires(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 20)
    # A poller that read every entry, beat once and died (kill -9): no sign-off.
    await redis.xreadgroup(POLLER_GROUP, "dead", {streams.applications: ">"})
    await redis.set(streams.heartbeat(POLLER_GROUP, "dead"), b"1", px=150)
    poller, _ = make_poller(bank_sim, consumer_name="alive", read_batch=7, **HEARTBEATS)
    running = asyncio.create_task(poller.run())
    try:
        await eventually(lambda: poller.stats.finished == len(sent))
        remaining = await consumers(redis, streams)
        async with asyncio.timeout(DEADLINE):
            while b"dead" in remaining:  # removed once it holds nothing
                await asyncio.sleep(0.02)
                remaining = await consumers(redis, streams)
    finally:
        poller.stop()
        await running

    assert poller.taken_over == len(sent)
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)
    assert await pending(redis, streams) == {}
    assert remaining == {b"alive"}
    assert bank_sim.state.stats().submissions == len(sent)


async def test_a_live_pollers_entries_are_never_taken_over(
    redis: Redis, streams: StreamNames, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 20)
    # Actors wait 1.5-1.8 s for the bank, three times the heartbeat TTL, and touch their
    # entries only every claim_interval: only the heartbeat protects them. The TTL is
    # ten beats, so a loaded machine's stalls do not make a live poller look dead.
    beats = {**HEARTBEATS, "heartbeat_ttl": 0.5}
    async with running_bank_sim(SimConfig(min_delay=1.5, max_delay=1.8)) as slow_sim:
        first, _ = make_poller(slow_sim, consumer_name="first", **beats)
        second, _ = make_poller(slow_sim, consumer_name="second", **beats)
        await _run_both_until_the_first_finishes(first, second, slow_sim, len(sent))

    assert (first.taken_over, second.taken_over, second.stats.finished) == (0, 0, 0)
    assert slow_sim.state.stats().duplicate_submissions == 0
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), slow_sim)
    assert await pending(redis, streams) == {}


async def _run_both_until_the_first_finishes(
    first: Poller, second: Poller, sim: RunningBankSim, count: int
) -> None:
    runs = [asyncio.create_task(first.run())]
    try:
        await eventually(lambda: sim.state.stats().submissions == count)
        runs.append(asyncio.create_task(second.run()))
        await eventually(lambda: first.stats.finished == count)
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(*runs)


async def test_a_stopped_poller_signs_off_and_a_running_one_keeps_beating(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    poller, _ = make_poller(bank_sim, **HEARTBEATS)
    key = streams.heartbeat(POLLER_GROUP, "poller-1")
    running = asyncio.create_task(poller.run())
    await eventually(lambda: poller.running)
    seen = []
    for _ in range(3):  # the key outlives several TTLs while the poller runs
        await asyncio.sleep(HEARTBEATS["heartbeat_ttl"])
        seen.append(await redis.exists(key))

    poller.stop()
    await running

    assert seen == [1, 1, 1]
    assert await redis.exists(key) == 0


async def test_a_restarted_poller_resumes_its_own_pending_entries(
    redis: Redis, streams: StreamNames, slow_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    sent = await submit(redis, streams, 20)
    first, _ = make_poller(slow_sim)
    await stop_mid_flight(first, slow_sim, len(sent))

    restarted, _ = make_poller(slow_sim)
    async with asyncio.timeout(FAST["claim_idle"] / 2):  # long before anything is claimed
        await drain(restarted)

    assert restarted.stats.finished == len(sent)
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), slow_sim)
    assert await pending(redis, streams) == {}


async def test_the_poller_rides_out_a_redis_restart(
    stream_prefix: str, streams: StreamNames, bank_sim: RunningBankSim
) -> None:
    server = EmbeddedRedis()
    await asyncio.to_thread(server.start)
    settings = PollerSettings(
        redis_url=server.url, stream_prefix=stream_prefix, bank_url=bank_sim.url, **FAST
    )
    poller_redis = Redis.from_url(server.url)
    bank = BankClient.from_settings(settings)
    poller = Poller(settings, poller_redis, bank)
    running = asyncio.create_task(poller.run())
    try:
        async with Redis.from_url(server.url) as redis:
            await submit(redis, streams, 5)
            await eventually(lambda: poller.stats.finished == 5)

        await asyncio.to_thread(server.stop)
        await asyncio.sleep(0.2)  # the poller fails to read meanwhile, and keeps trying
        await asyncio.to_thread(server.start)  # the same port, with no data at all
        async with Redis.from_url(server.url) as redis:
            after_restart = [
                SubmissionMessage(id=uuid.uuid4(), first_name="A", last_name="B") for _ in range(5)
            ]
            for message in after_restart:
                await redis.xadd(streams.applications, encode(message))

            await eventually(lambda: poller.stats.finished == 10)
            assert_decided_as_the_bank_did(after_restart, await updates(redis, streams), bank_sim)
            assert await pending(redis, streams) == {}
        assert not running.done()
    finally:
        poller.stop()
        await running
        await bank.close()
        await poller_redis.aclose()
        await asyncio.to_thread(server.stop)


async def test_stop_is_prompt_with_thousands_of_actors_queued_for_the_bank(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    bank_sim.state.set_faults({"slow_rate": 1.0, "slow_delay": 0.3})
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    async with redis.pipeline(transaction=False) as pipe:
        for _ in range(10_000):
            message = SubmissionMessage(id=uuid.uuid4(), first_name="A", last_name="B")
            pipe.xadd(streams.applications, encode(message))
        await pipe.execute()
    grace = 3.0
    poller, _ = make_poller(
        bank_sim, bank_max_connections=2, read_batch=5_000, shutdown_grace=grace
    )
    running = asyncio.create_task(poller.run())
    await eventually(lambda: poller.in_flight == 10_000)

    poller.stop()
    async with asyncio.timeout(grace):
        await running

    assert poller.in_flight == 0  # every actor was cancelled within the grace period
    summary: Any = await redis.xpending(streams.applications, POLLER_GROUP)
    assert summary["pending"] == 10_000
