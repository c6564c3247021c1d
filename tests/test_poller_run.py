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
from redis.asyncio import Redis

from lendo_banksim.config import SimConfig
from lendo_banksim.testing import RunningBankSim, running_bank_sim
from lendo_local.redis_server import EmbeddedRedis
from lendo_poller.acks import ENTRY_ID_FIELD, REASON_FIELD
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
    await ensure_group(redis, streams.submissions, POLLER_GROUP)
    messages = [
        SubmissionMessage(
            id=uuid.uuid4(), first_name="Åsa", last_name="Ñúñez", request_id=f"req-{n}"
        )
        for n in range(count)
    ]
    for message in messages:
        await redis.xadd(streams.submissions, encode(message))
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
    rows: Any = await redis.xpending_range(streams.submissions, POLLER_GROUP, "-", "+", 10_000)
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
    not_json = await add(redis, streams.submissions, {b"data": b"{not json"})
    no_data = await add(redis, streams.submissions, {b"payload": b"?"})
    poller, _ = make_poller(bank_sim)

    await drain(poller)

    dead = {
        fields[ENTRY_ID_FIELD]: fields for _, fields in await entries(redis, streams.dead_letters)
    }
    assert dead.keys() == {not_json, no_data}
    assert dead[not_json][b"data"] == b"{not json"
    assert dead[no_data][b"payload"] == b"?"
    assert all(fields[REASON_FIELD] for fields in dead.values())
    assert poller.stats.dead_lettered == 2
    assert await pending(redis, streams) == {}
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), bank_sim)


async def test_an_entry_delivered_too_often_goes_to_the_dead_letters(
    redis: Redis, streams: StreamNames, bank_sim: RunningBankSim, make_poller: MakePoller
) -> None:
    [message] = await submit(redis, streams, 1)
    # A consumer that crashes on this entry, again and again.
    await redis.xreadgroup(POLLER_GROUP, "crashing", {streams.submissions: ">"})
    for _ in range(2):
        await redis.xreadgroup(POLLER_GROUP, "crashing", {streams.submissions: "0"})
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
    await redis.xadd(streams.submissions, encode(sent[0]))
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

    second, _ = make_poller(slow_sim, consumer_name="poller-2", claim_idle=0.1, claim_interval=0.05)
    await asyncio.sleep(0.1)
    await drain(second)

    assert second.stats.finished == len(sent)
    assert_decided_as_the_bank_did(sent, await updates(redis, streams), slow_sim)
    assert await pending(redis, streams) == {}


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
                await redis.xadd(streams.submissions, encode(message))

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
    await ensure_group(redis, streams.submissions, POLLER_GROUP)
    async with redis.pipeline(transaction=False) as pipe:
        for _ in range(10_000):
            message = SubmissionMessage(id=uuid.uuid4(), first_name="A", last_name="B")
            pipe.xadd(streams.submissions, encode(message))
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
    summary: Any = await redis.xpending(streams.submissions, POLLER_GROUP)
    assert summary["pending"] == 10_000
