"""A webhook receiver on loopback, in its own process: answers 204 at once and keeps what came.

Run as ``python -m benchmarks.support.receiver PORT``: every POST to
``/hook`` is kept with its arrival time (``time.time()``, the clock the API's
timestamps use on this machine) and answered 204 before anything else is
done with it; ``GET /received`` hands the benchmark everything kept, and
``DELETE /received`` forgets it. Signatures are checked by the benchmark
afterwards, so that the receiver's own work per POST stays as small as the
hello-world server's. Like the API, it runs on uvloop.
"""

import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiohttp import web

from benchmarks.support.baseline import Baseline, hello_world

KEPT_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

_RECEIVED = web.AppKey("received", list[list[Any]])


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST the receiver got: when, its Standard Webhooks headers, and its body."""

    at: float
    headers: dict[str, str]
    body: str

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(self.body)
        return event


@contextmanager
def receiver(workdir: Path) -> Iterator[Baseline]:
    """Run the receiver until the block ends; its webhook URL is ``url + "/hook"``."""
    with hello_world(workdir, module="benchmarks.support.receiver", ready="/received") as running:
        yield running


def received(url: str) -> list[Delivery]:
    """Everything the receiver at ``url`` kept, in arrival order."""
    with urllib.request.urlopen(f"{url}/received", timeout=60) as response:  # noqa: S310 - local
        rows = orjson.loads(response.read())
    return [
        Delivery(at, dict(zip(KEPT_HEADERS, headers, strict=True)), body)
        for at, headers, body in rows
    ]


def count(url: str) -> int:
    """How many POSTs the receiver at ``url`` has kept."""
    with urllib.request.urlopen(f"{url}/count", timeout=10) as response:  # noqa: S310 - local
        return int(response.read())


def forget(url: str) -> None:
    """Empty the receiver at ``url``."""
    request = urllib.request.Request(f"{url}/received", method="DELETE")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - local
        pass


async def hook(request: web.Request) -> web.Response:
    body = await request.text()
    headers = request.headers
    request.app[_RECEIVED].append(
        [time.time(), [headers.get(name, "") for name in KEPT_HEADERS], body]
    )
    return web.Response(status=204)


async def listed(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[_RECEIVED]), content_type="application/json")


async def counted(request: web.Request) -> web.Response:
    return web.Response(text=str(len(request.app[_RECEIVED])))


async def cleared(request: web.Request) -> web.Response:
    request.app[_RECEIVED].clear()
    return web.Response(status=204)


def main() -> None:
    app = web.Application(client_max_size=1 << 30)
    app[_RECEIVED] = []
    app.router.add_post("/hook", hook)
    app.router.add_get("/received", listed)
    app.router.add_get("/count", counted)
    app.router.add_delete("/received", cleared)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
