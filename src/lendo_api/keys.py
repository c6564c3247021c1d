"""Typed keys of what the application and each request hold."""

import asyncio

from aiohttp import web
from redis.asyncio import Redis

from lendo_api.applications import Applications
from lendo_api.metrics import ApiMetrics
from lendo_api.reconciler import Reconciler
from lendo_api.settings import ApiSettings
from lendo_api.store import ApplicationStore

SETTINGS = web.AppKey("settings", ApiSettings)
STORE: web.AppKey[ApplicationStore] = web.AppKey("store")
REDIS = web.AppKey("redis", Redis)
APPLICATIONS = web.AppKey("applications", Applications)
RECONCILER = web.AppKey("reconciler", Reconciler)
METRICS = web.AppKey("metrics", ApiMetrics)
UPDATES_TASK: web.AppKey["asyncio.Task[None]"] = web.AppKey("updates_task")
"""The running update consumer; the API is not ready without it."""

REQUEST_ID = web.RequestKey("request_id", str)
CLIENT = web.RequestKey("client", str)
"""Who is calling: an id derived from the API key, or empty without authentication."""
