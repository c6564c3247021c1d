"""The chaos harness: the three real processes, a client load, and the final audit.

A :class:`Cluster` runs ``lendo-bank-sim``, ``lendo-api`` and one or more
``lendo-poller`` processes, every timing :data:`TIME_SCALE` times faster, and
a webhook receiver in the test process (it outlives every kill).
:func:`run_scenario` creates applications at a steady rate while a scenario's
chaos coroutine breaks things and an SSE client follows the events, waits
until no application is pending, and audits the API's store against the
simulator's decisions and what the receiver and the SSE client got against
the event log (:func:`audit_push`).
"""

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

from lendo_local.processes import Service
from lendo_local.redis_server import EmbeddedRedis
from lendo_local.system import LocalSystem, scaled_retry_schedule
from tests.webhook_receiver import WebhookReceiver

from .sse import EventFollower, event_log

TIME_SCALE = float(os.environ.get("LENDO_CHAOS_TIME_SCALE", "40"))
"""Decisions in 0.125-0.5 s instead of 5-20 s, and every other timing to match; 1 runs the
product's defaults in real time, to measure how soon each failure is over (docs/reliability.md)."""
QUIET = {"LENDO_LOG_LEVEL": "WARNING", "LENDO_SIM_LOG_LEVEL": "WARNING"}
WEBHOOK_TIME_SCALE = float(os.environ.get("LENDO_CHAOS_WEBHOOK_TIME_SCALE", "3600"))
"""The webhook retry schedule runs an hour a second (0.05, 0.08, 0.5, 2, 5, 10, 10 s): a
receiver down for seconds is down for hours of it, and the retries still come within the test."""
WEBHOOK_ENV = {
    "LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "LENDO_WEBHOOK_RETRY_SCHEDULE": scaled_retry_schedule(WEBHOOK_TIME_SCALE),
}
"""For every API of the suite: the receiver is on loopback, the retries on their own scale."""

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
    recovered_within: float
    """The longest any application took to become final after it could have: after the
    later of the bank's decision and the last fault before (a failed one: its creation)."""
    push: "PushReport | None" = None
    """What the webhook receiver and the SSE client got; a row of the second table."""

    HEADER = (
        "| scenario | applications | kills / faults | time to all-final (s) "
        "| recovered within (s) | bank requests per application | duplicates at the bank "
        "| dead letters | lost | wrong |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.applications} | {self.faults} "
            f"| {self.seconds_to_final:.1f} | {self.recovered_within:.1f} "
            f"| {self.requests_per_application:.2f} "
            f"| {self.duplicates_at_bank} | {self.dead_letters} | {self.lost} | {self.wrong} |"
        )


@dataclass
class PushReport:
    """What the webhook receiver and the SSE client got of one scenario's events."""

    scenario: str
    events: int
    posts_per_event: float
    refused: int
    """POSTs the receiver answered with other than a 2xx (on purpose)."""
    delivered_again: int
    """2xx answers beyond each event's first: delivered at least once, after a kill."""
    undelivered: int
    bad_signatures: int
    recovered_within: float
    """The longest an event took to be delivered after it could have been: after the
    later of its timestamp and the last fault before."""
    sse_connections: int
    sse_missed: int
    sse_repeated: int

    HEADER = (
        "| scenario | events | webhook POSTs per event | answered non-2xx | delivered again "
        "| undelivered | bad signatures | delivered within (s) | SSE connections "
        "| SSE missed | SSE repeated |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.events} | {self.posts_per_event:.2f} | {self.refused} "
            f"| {self.delivered_again} | {self.undelivered} | {self.bad_signatures} "
            f"| {self.recovered_within:.1f} | {self.sse_connections} "
            f"| {self.sse_missed} | {self.sse_repeated} |"
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
    faults: list[float] = field(default_factory=list)
    """When (``time.time()``) the chaos broke something, or the cause of a fault ended."""
    receiver: WebhookReceiver = field(default_factory=WebhookReceiver)
    """Where the webhook registered at :meth:`start` sends every event."""
    receiver_faults: list[float] = field(default_factory=list)
    """As :attr:`faults`, for the receiver: they delay deliveries, not applications."""

    def __post_init__(self) -> None:
        self.system = LocalSystem(
            self.workdir,
            self.redis_url,
            time_scale=TIME_SCALE,
            env={"LENDO_STREAM_PREFIX": self.prefix, **QUIET},
        )

    async def start(self) -> None:
        await self.receiver.start()
        self.bank = self.system.bank_sim("--seed", str(SEED), wait=False)
        self.api = self.system.api(
            {**WEBHOOK_ENV, **self.api_env, "LENDO_CONSUMER_NAME": "api-1"}, wait=False
        )
        self.poller = [
            self.system.poller(f"chaos-poller-{number}", wait=False)
            for number in range(self.pollers)
        ]
        await self.up()
        async with aiohttp.ClientSession() as http:
            await register_webhook(http, self.api_url, self.receiver)

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


async def stored(http: aiohttp.ClientSession, api_url: str) -> dict[str, dict[str, Any]]:
    """Every application in the API's store, by id, through the public listing."""
    applications: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = await _get_json(http, f"{api_url}/api/applications", **params)
        applications.update((item["id"], item) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return applications


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
    follower = EventFollower(lambda _connection: cluster.api_url, seed=SEED)
    follower.start()
    try:
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
            kept = await stored(http, cluster.api_url)
            decisions: dict[str, str] = await _get_json(http, f"{cluster.bank_url}/_sim/decisions")
            decided_at: dict[str, float] = await _get_json(
                http, f"{cluster.bank_url}/_sim/decision_times"
            )
            refused: list[str] = await _get_json(http, f"{cluster.bank_url}/_sim/refused")
            requests: dict[str, int] = await _get_json(
                http, f"{cluster.bank_url}/_sim/requests_per_application"
            )
            stats = await _get_json(http, f"{cluster.bank_url}/_sim/stats")
            assert set(kept) == created, (
                "the store holds exactly the applications the clients created"
            )
            push = await audit_push(
                name,
                http,
                cluster.api_url,
                kept,
                receiver=cluster.receiver,
                follower=follower,
                faults=cluster.faults + cluster.receiver_faults,
                deadline=deadline,
            )
    finally:
        await follower.stop()
    redis = Redis.from_url(cluster.redis_url)
    try:
        dead_letters = await redis.xlen(f"{cluster.prefix}dead-letters")
        async with asyncio.timeout(deadline):
            await wait_until_trimmed(
                redis, (f"{cluster.prefix}applications", f"{cluster.prefix}updates")
            )
    finally:
        await redis.aclose()
    statuses = {id: application["status"] for id, application in kept.items()}
    # What the bank said: its decision, or that it refused the application as invalid.
    expected = {**dict.fromkeys(refused, "failed"), **decisions}
    return Report(
        scenario=name,
        applications=len(created),
        faults=caused + sum(stats["faults"].values()),
        seconds_to_final=seconds,
        requests_per_application=sum(requests.get(id, 0) for id in created) / len(created),
        duplicates_at_bank=stats["duplicate_submissions"],
        dead_letters=dead_letters,
        lost=sum(1 for id in created if statuses[id] not in FINAL),
        wrong=sum(
            1 for id in created if statuses[id] in FINAL and statuses[id] != expected.get(id)
        ),
        recovered_within=max(
            lateness(kept[id], decided_at.get(id), cluster.faults) for id in created
        ),
        push=push,
    )


async def register_webhook(
    http: aiohttp.ClientSession, api_url: str, receiver: WebhookReceiver
) -> None:
    """A webhook to ``receiver`` for every event type; the receiver checks its signatures."""
    async with http.post(f"{api_url}/api/webhooks", json={"url": receiver.url}) as response:
        assert response.status == 201, await response.text()
        created = await response.json()
    receiver.secret = created["secret"]


async def audit_push(
    name: str,
    http: aiohttp.ClientSession,
    api_url: str,
    applications: dict[str, dict[str, Any]],
    *,
    receiver: WebhookReceiver,
    follower: EventFollower,
    faults: list[float],
    deadline: float,
) -> PushReport:
    """Check what the receiver and the SSE client got against the event log, once all is final.

    Waits (up to ``deadline``) until the receiver has answered 2xx to every
    event of the log and the follower has read to its end; what is still
    missing then counts as undelivered or missed.
    """
    slots = asyncio.Semaphore(CONCURRENT_CREATES)

    async def history(id: str) -> list[dict[str, Any]]:
        async with slots:
            page = await _get_json(http, f"{api_url}/api/applications/{id}/events")
        events: list[dict[str, Any]] = page["items"]
        return events

    histories = dict(
        zip(applications, await asyncio.gather(*map(history, applications)), strict=True)
    )
    for id, events in histories.items():
        status = applications[id]["status"]
        assert [event["type"] for event in events] == [
            "application.created",
            f"application.{status}",
        ], "each application's log holds its creation and its decision"
    logged = {event["id"]: event for events in histories.values() for event in events}

    with contextlib.suppress(TimeoutError):
        await receiver.wait_for(lambda: logged.keys() <= receiver.delivered().keys(), deadline)
    bodies: dict[str, set[str]] = {}
    for received in receiver.received:
        event_id = json.loads(received.body)["id"]
        assert event_id == received.headers["webhook-id"], "webhook-id is the event's id"
        bodies.setdefault(event_id, set()).add(received.body)
    assert all(len(sent) == 1 for sent in bodies.values()), "an event id always has one body"
    assert bodies.keys() <= logged.keys(), "the receiver got only events of the log"
    for id, (body,) in bodies.items():
        assert json.loads(body) == logged[id], "each event is sent as the log has it"
    delivered = receiver.delivered()
    two_xx = [r.headers["webhook-id"] for r in receiver.received if 200 <= r.status < 300]

    log = await event_log(http, api_url)
    streamed = {event["id"]: event for event in (json.loads(e.data) for e in log)}
    assert len(streamed) == len(log), "the log holds each event once"
    assert streamed == logged, "the log is the applications' histories"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline):
            await follower.caught_up(log[-1].cursor)
    followed = [event.cursor for event in follower.events]
    assert followed == sorted(followed), "the stream sends events in the log's order"
    by_cursor = {event.cursor: event for event in log}
    assert all(by_cursor[event.cursor] == event for event in follower.events), (
        "the stream sends each event as the log has it"
    )

    return PushReport(
        scenario=name,
        events=len(logged),
        posts_per_event=len(receiver.received) / len(logged),
        refused=sum(1 for r in receiver.received if not 200 <= r.status < 300),
        delivered_again=len(two_xx) - len(set(two_xx)),
        undelivered=len(logged.keys() - delivered.keys()),
        # Checked on arrival: the signature's timestamp must be the attempt's, not the event's.
        bad_signatures=sum(1 for received in receiver.received if not received.signed),
        recovered_within=max(
            (
                _late(_seconds(logged[id]["timestamp"]), delivered[id].received_at, faults)
                for id in delivered
            ),
            default=0.0,
        ),
        sse_connections=follower.connections,
        sse_missed=len(by_cursor.keys() - set(followed)),
        sse_repeated=len(followed) - len(set(followed)),
    )


FINAL = ("completed", "rejected", "failed")


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def lateness(application: dict[str, Any], decided_at: float | None, faults: list[float]) -> float:
    """Seconds from when ``application`` could have been final to when it was.

    A failed one could not be final before it was created; a decided one, before the
    bank's decision (unknown once the bank forgot it: its creation then) and the last
    fault before it became final.
    """
    created, final = _seconds(application["created_at"]), _seconds(application["updated_at"])
    if application["status"] == "failed":
        return final - created
    return _late(decided_at or created, final, faults)


def _late(could: float, did: float, faults: list[float]) -> float:
    """Seconds from the later of ``could`` and the last fault before ``did``, to ``did``."""
    last_fault = max((fault for fault in faults if fault <= did), default=0.0)
    return max(0.0, did - max(could, last_fault))
