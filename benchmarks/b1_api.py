"""Benchmark 1: the API's create, get and list at 64 connections, beside hello-world.

``python -m benchmarks.b1_api [--seconds 10]`` starts Redis, the API (with its
production defaults: INFO logs, an update consumer and reconciler running)
and the hello-world baseline, each in its own process, and loads each with
wrk from another. Creates go through the whole outbox path: SQLite commit,
then XADD to the submission stream.

Beside each rate, the server's CPU time per request (user + system, all its
threads, from /proc): on a shared machine the rates move with whatever else
runs, the CPU a request costs much less, so its ratio to the baseline's is
the steadier figure. The targets are judged on the rates, as set.
"""

import argparse
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from benchmarks.support.baseline import cpu_seconds, hello_world
from benchmarks.support.load import Load, get_paths, post_json, require_wrk, run_wrk
from benchmarks.support.report import against_target, table, write_section
from lendo_local.system import running_system

CONNECTIONS = 64
BODY = json.dumps({"first_name": "Ada", "last_name": "Lovelace"})


@dataclass(frozen=True)
class Measured:
    """One wrk load and what it cost the server."""

    load: Load
    cpu_us: float
    """Server CPU time per request, in microseconds."""


def _measure(pid: int, url: str, **wrk: Any) -> Measured:
    before = cpu_seconds(pid)
    load = run_wrk(url, **wrk)
    return Measured(load, (cpu_seconds(pid) - before) / max(load.requests, 1) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    seconds = parser.parse_args().seconds
    require_wrk()
    with (
        running_system() as system,
        hello_world(system.workdir) as hello,
        hello_world(system.workdir, "--asyncio") as hello_asyncio,
    ):
        api = system.api().base_url
        api_pid = system.pid("lendo-api")
        baseline_get = _measure(hello.pid, f"{hello.url}/", seconds=seconds)
        asyncio_get = _measure(hello_asyncio.pid, f"{hello_asyncio.url}/", seconds=seconds)
        baseline_post = _measure(
            hello.pid, f"{hello.url}/", script=post_json(BODY), seconds=seconds
        )
        create = _measure(
            api_pid, f"{api}/api/applications", script=post_json(BODY), seconds=seconds
        )
        ids = some_ids(api)
        get = _measure(
            api_pid,
            f"{api}/",
            script=get_paths([f"/api/applications/{id}" for id in ids]),
            seconds=seconds,
        )
        page = _measure(
            api_pid, f"{api}/api/applications?status=pending&limit=100", seconds=seconds
        )
    rows = [
        _row("hello-world GET (baseline)", baseline_get, baseline_get, None),
        _row("hello-world POST (baseline)", baseline_post, baseline_post, None),
        _row("hello-world GET on asyncio's loop (reference)", asyncio_get, baseline_get, None),
        _row("POST /api/applications", create, baseline_post, (0.25, 25.0)),
        _row("GET /api/applications/{id}", get, baseline_get, (0.5, None)),
        _row("GET /api/applications?status=pending&limit=100", page, baseline_get, (0.2, None)),
    ]
    body = (
        f"{CONNECTIONS} keep-alive connections, wrk (2 threads) in its own process, "
        f"{seconds:g} s per load. Every server runs on uvloop, the baseline too. "
        "Create is compared with hello-world POST, reads with "
        f"hello-world GET. The GETs pick among {len(ids)} existing ids; the table held "
        f"{create.load.requests:,} applications after the create load. CPU µs/req: the "
        "server's CPU time per request; × by CPU: the baseline's CPU per request over "
        "this one's, the throughput ratio if both were CPU-bound alone.\n\n"
        + table(
            [
                "endpoint",
                "req/s",
                "× baseline",
                "CPU µs/req",
                "× by CPU",
                "p50 ms",
                "p99 ms",
                "errors",
                "target",
                "result",
            ],
            rows,
        )
    )
    write_section("b1_api", "1. API throughput and latency", body)


def _row(
    name: str, measured: Measured, baseline: Measured, target: tuple[float, float | None] | None
) -> list[str]:
    load = measured.load
    ratio = load.rate / baseline.load.rate
    wanted, result = against_target(ratio, load.p99_ms, target)
    return [
        name,
        f"{load.rate:,.0f}",
        f"{ratio:.2f}",
        f"{measured.cpu_us:,.0f}",
        f"{baseline.cpu_us / measured.cpu_us:.2f}",
        f"{load.p50_ms:.1f}",
        f"{load.p99_ms:.1f}",
        str(load.errors),
        wanted,
        result,
    ]


def some_ids(api: str) -> list[str]:
    url = f"{api}/api/applications?limit=1000"
    with urllib.request.urlopen(url) as response:  # noqa: S310 - our own local API
        page = json.load(response)
    return [item["id"] for item in page["items"]]


if __name__ == "__main__":
    main()
