"""The baseline server: a hello-world aiohttp JSON endpoint, nothing else.

Run as its own process (``python -m benchmarks.support.hello PORT``) and loaded the
same way as the API, it shows what this machine, this Python and aiohttp can
serve at best; the API's figures are given as a share of its figures. It runs
on uvloop, as the API does, so that the ratio compares the code and not the
event loop (``--asyncio`` runs it on asyncio's own loop, for reference).
"""

import asyncio
import sys

import uvloop
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/", hello)
    loop = asyncio.new_event_loop() if "--asyncio" in sys.argv else uvloop.new_event_loop()
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop
    )


if __name__ == "__main__":
    main()
