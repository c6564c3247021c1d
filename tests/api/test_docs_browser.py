"""Swagger UI at /api/docs renders every operation in a real browser, with no internet.

Headless Chromium loads the page from a local server while every host other
than 127.0.0.1 fails to resolve, so an asset fetched from a CDN would leave
the page empty. The rendered DOM, not only the HTTP status, is checked.
"""

import asyncio
import os
import re
import shutil
from pathlib import Path

from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.settings import ApiSettings

CHROMIUM = os.environ.get("LENDO_TEST_CHROMIUM", "/usr/bin/chromium")
OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
OPERATIONS = [
    ("POST", "/api/applications", "Create an application"),
    ("GET", "/api/applications", "List applications"),
    ("GET", "/api/applications/{id}", "Read an application"),
    ("GET", "/api/applications/{id}/events", "An application's history"),
    ("GET", "/api/events", "Follow events as they happen (server-sent events)"),
    ("POST", "/api/webhooks", "Register a webhook"),
    ("GET", "/api/webhooks", "List your webhooks"),
    ("GET", "/api/webhooks/{id}", "Read a webhook"),
    ("DELETE", "/api/webhooks/{id}", "Delete a webhook"),
    ("POST", "/api/webhooks/{id}/rotate-secret", "Rotate a webhook's signing secret"),
    ("GET", "/api/webhooks/{id}/deliveries", "List a webhook's delivery attempts"),
    ("GET", "/healthz", "Health check"),
    ("GET", "/readyz", "Readiness check"),
    ("GET", "/metrics", "Prometheus metrics"),
]
OPERATIONS += [
    ("HEAD", path, f"{summary}: headers only")
    for method, path, summary in OPERATIONS
    if method == "GET"
]


async def rendered_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after its scripts ran, as headless Chromium sees it."""
    browser = shutil.which(CHROMIUM)
    assert browser, f"{CHROMIUM} is missing: install it with `make chromium` (Debian: chromium)"
    process = await asyncio.create_subprocess_exec(
        browser,
        *OFFLINE_FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(60):
            dom, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return dom.decode()


async def test_swagger_ui_renders_every_operation_offline(
    tmp_path: Path,
    redis_url: str,
    stream_prefix: str,
    redis: Redis,
    aiohttp_server: AiohttpServer,
) -> None:
    settings = ApiSettings(
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        db_path=tmp_path / "api.sqlite3",
        api_keys=("docs-need-no-key",),
    )
    server: TestServer = await aiohttp_server(create_app(settings))

    dom = await rendered_dom(str(server.make_url("/api/docs")), tmp_path / "profile")

    rendered = re.findall(
        r'opblock-summary-method">(\w+)<.*?data-path="([^"]+)".*?'
        r'opblock-summary-description">([^<]*)<',
        dom,
    )
    assert sorted(rendered) == sorted(OPERATIONS)
    assert "Lendo loan applications" in dom
    assert "Authorize" in dom
