"""Benchmark 6: how soon a decision reaches a webhook and an event stream; deliveries/s.

``python -m benchmarks.b5_push [--applications 2000] [--rate 50] [--deliveries 4000]
[--concurrency 4,16] [--stores sqlite,postgresql] [--parts latency,rate] [--profile]
[--latency-env KEY=VALUE,...]``: about 1 min for the latency part, 2 for the rates.

Latency, in real time at section 3's load: Redis, the simulator, the API
(SQLite, its defaults but ``LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS``) and a
poller on its default schedule; a webhook for every event type points at the
loopback receiver (its own process, answering 204 at once), and this process
follows ``GET /api/events``. ``applications`` are created ``rate`` a second.
For each decision event, the receipt time of its first webhook POST and of its
server-sent event, minus the application's ``decided_at`` (when the poller saw
the bank's final word): one clock, this machine's. The event's ``timestamp``
(its commit) splits that into the pipeline (decided → committed, as section
3's) and the push (committed → received).

Deliveries per second: for each store and endpoint concurrency, a fresh API
(no poller) with a webhook for ``application.created`` only takes
``deliveries`` creates at full speed (64 at a time); the rate is deliveries
over first event committed → last POST received, and, after the last create
committed, the drain's. The baseline, in the same run: the same receiver
taking the same bodies as signed POSTs from a plain aiohttp client in this
process, as many at a time as the endpoint concurrency, which is the most the
delivery path could reach.
"""

import argparse
import asyncio
import sqlite3
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg
from standardwebhooks.webhooks import Webhook

from benchmarks.support.baseline import cpu_seconds
from benchmarks.support.clients import create_applications, percentile, wait_until_final
from benchmarks.support.postgres import SERVER, fresh_database, server_version
from benchmarks.support.profiles import Profile
from benchmarks.support.receiver import Delivery, count, forget, received, receiver
from benchmarks.support.report import table, write_section
from lendo_local.processes import wait_for_http
from lendo_local.system import running_system

DECISIONS = ("application.completed", "application.rejected", "application.failed")
PRIVATE = {"LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
PROFILE_SECONDS = 4.0
BASELINE_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Arrival:
    """One decision event as a client got it: when, and the event's own two moments."""

    at: float
    decided: float
    committed: float
    event: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--applications", type=int, default=2000, help="latency run")
    parser.add_argument("--rate", type=float, default=50.0, help="created per second")
    parser.add_argument("--deliveries", type=int, default=4000, help="per rate run")
    parser.add_argument("--concurrency", default="4,16", help="endpoint concurrencies")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--parts", default="latency,rate", help="which measurements")
    parser.add_argument("--profile", action="store_true", help="py-spy the API's drain")
    parser.add_argument(
        "--latency-env", default="", help="KEY=VALUE,... for the latency run's API, on top"
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lendo-push-")))
        sink = stack.enter_context(receiver(workdir)).url
        parts = args.parts.split(",")
        latency = _latency_section(sink, args) if "latency" in parts else ""
        rates = _rate_section(sink, args) if "rate" in parts else ""
    write_section("b5_push", "6. Push to clients: webhooks and event streams", latency + rates)


def _latency_section(sink: str, args: argparse.Namespace) -> str:
    with running_system() as system:
        system.bank_sim()
        extra = dict(pair.split("=", 1) for pair in args.latency_env.split(",") if pair)
        api = system.api({**PRIVATE, **extra}).base_url
        # The default schedule, reading the stream as section 3's poller does.
        system.poller("push", {"LENDO_READ_BLOCK": "0.1"})
        webhook, sse, ids = asyncio.run(_follow_decisions(system.db_path, api, sink, args))
        attempted = _first_attempts(system.db_path)
    total = len(ids)
    sent = [attempted[a.event] - a.committed for a in webhook.values() if a.event in attempted]
    posted = [a.at - attempted[a.event] for a in webhook.values() if a.event in attempted]
    rows = []
    for name, arrivals in (("webhook", webhook), ("server-sent event", sse)):
        mine = [arrivals[i] for i in ids if i in arrivals]
        rows.append(
            [
                name,
                f"{len(mine):,} of {total:,}",
                *_ms([a.committed - a.decided for a in mine]),
                *_ms([a.at - a.committed for a in mine]),
                *_ms([a.at - a.decided for a in mine]),
            ]
        )
    return (
        f"### Decision → webhook and → event stream\n\n"
        f"Real time, section 3's load: {total:,} applications, {args.rate:g} created per "
        "second, decisions 5–20 s after submission, the poller on its default schedule, the "
        "API on SQLite with its defaults (event log read every "
        "`LENDO_EVENTS_POLL_INTERVAL` = 0.1 s, and at once after the API applies decisions)"
        + (f", but `{args.latency_env}`" if args.latency_env else "")
        + "; one webhook for every event type (so "
        f"~{2 * args.rate:g} deliveries/s) to a loopback receiver answering 204, and one "
        "`GET /api/events` stream followed by the benchmark. Times from the application's "
        "`decided_at` (the poller saw the bank's final word) to the first POST / the event "
        "received; committed = the event's `timestamp`. ms, p50 / p99 / max.\n\n"
        + table(
            [
                "pushed by",
                "decisions received",
                "decided → committed",
                "committed → received",
                "decided → received",
            ],
            [
                [r[0], r[1], " / ".join(r[2:5]), " / ".join(r[5:8]), " / ".join(r[8:11])]
                for r in rows
            ],
        )
        + "\nOf the webhook's committed → received: committed → the dispatcher began the "
        "first attempt (its recorded `attempted_at`) "
        + " / ".join(_ms(sent))
        + " ms; that attempt's POST (attempted → received) "
        + " / ".join(_ms(posted))
        + " ms.\n\n"
    )


async def _follow_decisions(
    database: Path, api: str, sink: str, args: argparse.Namespace
) -> tuple[dict[str, Arrival], dict[str, Arrival], list[str]]:
    forget(sink)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        webhook = await _register(http, api, f"{sink}/hook", None)
        sse: dict[str, Arrival] = {}
        opened = asyncio.Event()
        follower = asyncio.create_task(_follow(http, f"{api}/api/events", sse, opened))
        await asyncio.wait_for(opened.wait(), 10)
        ids = await create_applications(api, args.applications, per_second=args.rate)
        await asyncio.to_thread(wait_until_final, database, timeout=60)
        await _until(lambda: len(sse) >= len(ids), within=30)
        await _until(lambda: count(sink) >= 2 * len(ids), within=30)
        follower.cancel()
    deliveries = received(sink)
    _verify(deliveries, webhook["secret"])
    by_webhook: dict[str, Arrival] = {}
    for delivery in deliveries:
        event = delivery.event
        if event["type"] in DECISIONS:
            by_webhook.setdefault(event["data"]["id"], _arrival(delivery.at, event))
    return by_webhook, sse, ids


async def _follow(
    http: aiohttp.ClientSession, url: str, into: dict[str, Arrival], opened: asyncio.Event
) -> None:
    """Keep each decision event the stream sends, by application id, with when it came."""
    async with http.get(url, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        opened.set()
        async for line in response.content:
            if line.startswith(b"data:"):
                at = time.time()
                event = orjson.loads(line[5:])
                if event["type"] in DECISIONS:
                    into.setdefault(event["data"]["id"], _arrival(at, event))


def _arrival(at: float, event: dict[str, Any]) -> Arrival:
    return Arrival(
        at, _moment(event["data"]["decided_at"]), _moment(event["timestamp"]), event["id"]
    )


def _dispatch_rounds(api: str) -> float:
    """The API's ``lendo_api_webhook_dispatch_rounds_total``: its dispatcher's claims so far."""
    with urllib.request.urlopen(f"{api}/metrics", timeout=10) as response:  # noqa: S310 - local
        for line in response.read().decode().splitlines():
            if line.startswith("lendo_api_webhook_dispatch_rounds_total "):
                return float(line.split()[1])
    raise RuntimeError("no lendo_api_webhook_dispatch_rounds_total in /metrics")


def _commits(database: str | None) -> int:
    """Transactions committed in ``database`` so far (0 without one)."""
    if database is None:
        return 0
    with psycopg.connect(database) as db:
        row = db.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _first_attempts(database: Path) -> dict[str, float]:
    """When the dispatcher began each event's first attempt (its ``attempted_at``), by event id."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT e.id, a.attempted_at FROM webhook_attempts AS a"
            " JOIN webhook_deliveries AS d ON d.id = a.delivery_id"
            " JOIN events AS e ON e.seq = d.event_seq WHERE a.attempt = 1"
        ).fetchall()
    return {id: _moment(moment) for id, moment in rows}


def _rate_section(sink: str, args: argparse.Namespace) -> str:
    rows: list[list[str]] = []
    notes: list[str] = []
    stores = args.stores.split(",")
    for store in stores:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            measured, profile = _rate(
                sink, store, concurrency, args.deliveries, profiled=args.profile
            )
            rows.append(measured)
            notes.append(f"- {store}, endpoint concurrency {concurrency}: {profile}")
    database = (
        f" PostgreSQL: {server_version(SERVER)}, this machine's." if "postgresql" in stores else ""
    )
    return (
        "### Deliveries per second to one receiver\n\n"
        f"{args.deliveries:,} creates at full speed (64 at a time) on a fresh API, its one "
        "webhook for `application.created` at a loopback receiver answering 204 at once; "
        "rate = deliveries / (first event committed → last POST received); drain = the "
        "deliveries still to come when the last create committed, over the time they took. "
        "Baseline: the same bodies, signed, POSTed to the same receiver by a plain aiohttp "
        "client in the benchmark's process with the same concurrency, best of "
        f"{BASELINE_ROUNDS} rounds; its CPU is the client's own per POST. API CPU per "
        "delivery: from the creates' end, per delivery sent since; × by CPU = the "
        "baseline client's CPU per POST over the API's per delivery; claims: the dispatcher's "
        "looks for due deliveries (`lendo_api_webhook_dispatch_rounds_total`) over the drain, "
        "per delivery; DB transactions: "
        "the database's commits over the drain (PostgreSQL's `xact_commit`; the ideal is "
        f"one claim per endpoint-concurrency deliveries plus a shared record write).{database}\n\n"
        + table(
            [
                "store",
                "endpoint concurrency",
                "creates/s",
                "deliveries/s",
                "drain/s",
                "baseline/s",
                "× baseline",
                "API CPU µs/delivery",
                "baseline CPU µs/POST",
                "× by CPU",
                "claims/delivery",
                "DB transactions/delivery",
                "first POST after commit p50 / p99 ms",
                "delivered",
            ],
            rows,
        )
        + (
            "\nWhere the API's time goes in the drain's first "
            f"{PROFILE_SECONDS:g} s (py-spy, share of samples with the function on the stack; "
            "it slows the drain it samples):\n\n" + "\n".join(notes) + "\n"
            if args.profile
            else ""
        )
    )


def _rate(
    sink: str, store: str, concurrency: int, deliveries: int, *, profiled: bool
) -> tuple[list[str], str]:
    env = {**PRIVATE, "LENDO_WEBHOOK_ENDPOINT_CONCURRENCY": str(concurrency)}
    with running_system() as system, ExitStack() as stack:
        database = None
        if store == "postgresql":
            database = stack.enter_context(fresh_database(SERVER))
            env["LENDO_DATABASE_URL"] = database
        service = system.api(env, wait=False)
        wait_for_http(f"{service.base_url}/readyz", timeout=60, service=service)
        pid = system.pid("lendo-api")
        forget(sink)
        secret, created_in = asyncio.run(_create_all(service.base_url, sink, deliveries))
        # The drain alone: the API's CPU from the creates' end, per delivery sent since.
        cpu, before, commits_before = cpu_seconds(pid), count(sink), _commits(database)
        rounds = _dispatch_rounds(service.base_url)
        profile = Profile(pid, PROFILE_SECONDS, system.workdir / "api.spy") if profiled else None
        deadline = time.monotonic() + 90
        while count(sink) < deliveries and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = max(count(sink) - before, 1)
        rounds = (_dispatch_rounds(service.base_url) - rounds) / sent
        cpu = (cpu_seconds(pid) - cpu) / sent
        per_delivery = None
        if database is not None:
            time.sleep(1.5)  # backends report their commits at most once a second
            per_delivery = (_commits(database) - commits_before) / sent
        summary = "" if profile is None else profile.summary()
    got = received(sink)
    _verify(got, secret)
    events = [d.event for d in got]
    commits = sorted(_moment(e["timestamp"]) for e in events)
    arrivals = sorted(d.at for d in got)
    seconds = arrivals[-1] - commits[0]
    last_commit = commits[-1]
    after = [at for at in arrivals if at > last_commit]
    drain = len(after) / (arrivals[-1] - last_commit) if after else float("nan")
    late = [d.at - _moment(e["timestamp"]) for d, e in zip(got, events, strict=True)]
    forget(sink)
    bodies = [d.body for d in got]
    baseline, baseline_cpu = asyncio.run(_baseline(f"{sink}/hook", bodies, secret, concurrency))
    forget(sink)
    distinct = len({d.headers["webhook-id"] for d in got})
    rate = len(got) / seconds
    return [
        store,
        str(concurrency),
        f"{deliveries / created_in:,.0f}",
        f"{rate:,.0f}",
        f"{drain:,.0f}",
        f"{baseline:,.0f}",
        f"{rate / baseline:.2f}",
        f"{cpu * 1e6:,.0f}",
        f"{baseline_cpu * 1e6:,.0f}",
        f"{baseline_cpu / cpu:.2f}",
        f"{rounds:.2f}",
        "—" if per_delivery is None else f"{per_delivery:.2f}",
        f"{percentile(late, 0.5) * 1000:,.0f} / {percentile(late, 0.99) * 1000:,.0f}",
        f"{distinct:,} of {deliveries:,}"
        + ("" if len(got) == distinct else f" ({len(got):,} POSTs)"),
    ], summary


async def _create_all(api: str, sink: str, deliveries: int) -> tuple[str, float]:
    """Register the webhook and make the creates; its secret and how long the creates took."""
    async with aiohttp.ClientSession() as http:
        webhook = await _register(http, api, f"{sink}/hook", ["application.created"])
    started = time.perf_counter()
    await create_applications(api, deliveries)
    return str(webhook["secret"]), time.perf_counter() - started


async def _baseline(
    url: str, bodies: Sequence[str], secret: str, concurrency: int
) -> tuple[float, float]:
    """POSTs/s and CPU s/POST of ``bodies`` signed as the dispatcher signs them, best of rounds.

    ``concurrency`` at once; the best of :data:`BASELINE_ROUNDS`, since one
    round is short and the machine is shared.
    """
    signer = Webhook(secret)
    best = (0.0, 0.0)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(queue: list[str]) -> None:
            while queue:
                body = queue.pop()
                moment = datetime.now(UTC)
                event_id = orjson.loads(body)["id"]
                headers = {
                    "webhook-id": event_id,
                    "webhook-timestamp": str(int(moment.timestamp())),
                    "webhook-signature": signer.sign(event_id, moment, body),
                    "content-type": "application/json",
                }
                async with http.post(url, data=body.encode(), headers=headers) as response:
                    response.raise_for_status()

        for _ in range(BASELINE_ROUNDS):
            queue = list(reversed(bodies))
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker(queue) for _ in range(concurrency)))
            rate = len(bodies) / (time.perf_counter() - started)
            if rate > best[0]:
                best = (rate, (time.process_time() - cpu) / len(bodies))
    return best


async def _register(
    http: aiohttp.ClientSession, api: str, url: str, events: list[str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url} if events is None else {"url": url, "events": events}
    async with http.post(f"{api}/api/webhooks", json=body) as response:
        if response.status != 201:
            raise RuntimeError(f"webhook not registered: {response.status} {await response.text()}")
        created: dict[str, Any] = await response.json()
        return created


def _verify(deliveries: Sequence[Delivery], secret: str) -> None:
    """Check the signatures of a sample (the first, the last, every 97th); the library raises."""
    signer = Webhook(secret)
    for delivery in [*deliveries[::97], *deliveries[-1:]]:
        signer.verify(delivery.body, delivery.headers)


async def _until(done: Any, *, within: float) -> None:
    for _ in range(round(within / 0.1)):
        if done():
            return
        await asyncio.sleep(0.1)


def _ms(values: Sequence[float]) -> list[str]:
    if not values:
        return ["—"] * 3
    return [f"{percentile(values, q) * 1000:,.1f}" for q in (0.5, 0.99)] + [
        f"{max(values) * 1000:,.1f}"
    ]


def _moment(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


if __name__ == "__main__":
    main()
