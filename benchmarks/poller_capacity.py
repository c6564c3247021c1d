"""Benchmark 2: how many pending applications one poller process holds, at what memory and lag.

``python -m benchmarks.poller_capacity [--actors 50000] [--hold 10]`` runs
Redis, the simulator with a 20-minute decision window (nothing is decided
during the run) and one ``lendo-poller``. It measures the poller idle (the
baseline), then adds ``actors`` submissions to the stream at once and waits
until the poller has submitted each to the bank (its actors then sleep until
their first poll), then holds them for ``hold`` seconds.

Memory is the poller's resident set (``/proc/<pid>/status``); the event
loop's stalls come from the poller's own lag probe
(``lendo_poller_event_loop_lag_seconds``: how late a 50 ms timer fires),
read separately for the ramp (reading, starting actors, submitting each to
the bank) and the hold (actors asleep; the poller refreshing its claim on
every entry). The first poll comes after the run, so the figures are about
holding applications; the bank requests a poller sustains are measured by
the end-to-end benchmark.
"""

import argparse
import time
import urllib.request
import uuid
from pathlib import Path

import redis

from benchmarks.report import table, verdict, write_section
from benchmarks.system import running_system
from lendo_local.processes import wait_for_http
from lendo_local.redis_server import free_port
from lendo_streams import StreamNames, SubmissionMessage, encode

WINDOW = "1200"
"""Seconds the simulator takes to decide: longer than any run."""
XADD_CHUNK = 1_000
RSS_LIMIT_MB = 512.0
STALL_LIMIT = 0.1
LAG = "lendo_poller_event_loop_lag_seconds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actors", type=int, default=50_000, help="submissions to hold")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold them")
    args = parser.parse_args()
    with running_system() as system:
        bank = system.bank_sim("--min-delay", WINDOW, "--max-delay", WINDOW)
        port = free_port()
        service = system.poller(
            "capacity",
            {
                "LENDO_BANK_URL": bank,
                "LENDO_METRICS_PORT": str(port),
                "LENDO_MAX_IN_FLIGHT": str(args.actors),
                "LENDO_FIRST_POLL_DELAY": WINDOW,
                "LENDO_LOG_LEVEL": "WARNING",
            },
        )
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        wait_for_http(f"http://127.0.0.1:{port}/readyz", service=service)
        pid = system.pid("lendo-poller")
        time.sleep(2)
        idle_mb = _rss_mb(pid)
        before_ramp = _scrape(metrics_url)
        started = time.monotonic()
        _submit(system.redis_url, args.actors)
        while _submitted(_scrape(metrics_url)) < args.actors:
            if time.monotonic() - started > 600:
                raise TimeoutError("the poller did not submit every application in 10 minutes")
            time.sleep(0.25)
        ramp_seconds = time.monotonic() - started
        after_ramp = _scrape(metrics_url)
        held_mb = _rss_mb(pid)
        deadline = time.monotonic() + args.hold
        while time.monotonic() < deadline:
            held_mb = max(held_mb, _rss_mb(pid))
            time.sleep(0.5)
        after_hold = _scrape(metrics_url)
        in_flight = after_hold["lendo_poller_in_flight"]
    per_actor_kb = (held_mb - idle_mb) * 1024 / args.actors
    ramp_lag, hold_lag = _lag(before_ramp, after_ramp), _lag(after_ramp, after_hold)
    rows = [
        ["idle poller (baseline)", "0", f"{idle_mb:.0f}", "—", "—", "—"],
        [
            f"ramp: {args.actors:,} read and submitted ({args.actors / ramp_seconds:,.0f}/s)",
            f"{args.actors:,}",
            "—",
            "—",
            ramp_lag.worst,
            str(ramp_lag.stalls),
        ],
        [
            f"holding {args.hold:g} s",
            f"{in_flight:,.0f}",
            f"{held_mb:.0f}",
            f"{per_actor_kb:.1f}",
            hold_lag.worst,
            str(hold_lag.stalls),
        ],
    ]
    met = (
        in_flight >= 50_000
        and held_mb < RSS_LIMIT_MB
        and ramp_lag.stalls == 0
        and hold_lag.stalls == 0
    )
    body = (
        f"One poller, the simulator deciding after {WINDOW} s, {args.actors:,} submissions "
        "added to the stream at once. Lag: how late the poller's 50 ms timer fired "
        "(largest histogram bucket reached), and how many times it was late by more "
        f"than {STALL_LIMIT * 1000:g} ms.\n\n"
        + table(
            ["phase", "in flight", "RSS MB", "KB per actor", "worst lag", "stalls > 100 ms"],
            rows,
        )
        + f"\nTarget: ≥ 50,000 in flight, RSS < {RSS_LIMIT_MB:g} MB, no stall over "
        f"{STALL_LIMIT * 1000:g} ms: {verdict(met)}.\n"
    )
    write_section("poller_capacity", "2. Poller capacity", body)


def _submit(redis_url: str, count: int) -> None:
    """Add ``count`` submissions to the stream, as the API publishes them."""
    stream = StreamNames().applications
    client = redis.Redis.from_url(redis_url)
    try:
        for start in range(0, count, XADD_CHUNK):
            pipeline = client.pipeline(transaction=False)
            for number in range(start, min(count, start + XADD_CHUNK)):
                message = SubmissionMessage(
                    id=uuid.uuid4(), first_name=f"Ada{number}", last_name="Lovelace"
                )
                pipeline.xadd(stream, encode(message))
            pipeline.execute()
    finally:
        client.close()


def _submitted(samples: dict[str, float]) -> float:
    """Submissions the bank accepted: an actor counts once it waits for its first poll."""
    return samples.get('lendo_poller_bank_requests_total{outcome="accepted"}', 0.0)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _scrape(url: str) -> dict[str, float]:
    """Every sample of the poller's metrics, by name and labels as written."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local poller
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


class _Lag:
    def __init__(self, worst: str, stalls: int) -> None:
        self.worst = worst
        self.stalls = stalls


def _lag(before: dict[str, float], after: dict[str, float]) -> _Lag:
    """The lag probe's samples between two scrapes: the worst bucket, and stalls."""
    buckets = sorted(
        (float(name.split('le="')[1].rstrip('"}')), after[name] - before.get(name, 0.0))
        for name in after
        if name.startswith(f"{LAG}_bucket")
    )
    total = dict(buckets)[float("inf")]
    worst = next(bound for bound, count in buckets if count >= total)
    within = dict(buckets)[STALL_LIMIT]
    label = f"≤ {worst * 1000:g} ms" if worst != float("inf") else "> 2.5 s"
    return _Lag(label, round(total - within))


if __name__ == "__main__":
    main()
