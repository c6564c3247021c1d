"""The baseline server: a hello-world aiohttp JSON endpoint, nothing else.

Run as its own process (``python -m benchmarks.hello PORT``) and loaded the
same way as the API, it shows what this machine, this Python and aiohttp can
serve at best; the API's figures are given as a share of its figures.
"""

import sys

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
