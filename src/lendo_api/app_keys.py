"""Typed keys of what the application holds, one per resource ``create_app`` wires."""

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    # Only for the types: importing the domain here would make every module that
    # needs a key depend on all of it.
    from redis.asyncio import Redis

    from lendo_api.applications import Applications
    from lendo_api.event_feed import EventFeed
    from lendo_api.metrics import ApiMetrics
    from lendo_api.reconciler import Reconciler
    from lendo_api.redis_loss import RedisLossWatch
    from lendo_api.settings import ApiSettings
    from lendo_api.store import ApplicationStore
    from lendo_api.webhooks.targets import TargetRules

SETTINGS: "web.AppKey[ApiSettings]" = web.AppKey("settings")
STORE: "web.AppKey[ApplicationStore]" = web.AppKey("store")
REDIS: "web.AppKey[Redis]" = web.AppKey("redis")
APPLICATIONS: "web.AppKey[Applications]" = web.AppKey("applications")
RECONCILER: "web.AppKey[Reconciler]" = web.AppKey("reconciler")
REDIS_LOSS_WATCH: "web.AppKey[RedisLossWatch]" = web.AppKey("redis_loss_watch")
METRICS: "web.AppKey[ApiMetrics]" = web.AppKey("metrics")
EVENT_FEED: "web.AppKey[EventFeed]" = web.AppKey("event_feed")
WEBHOOK_TARGETS: "web.AppKey[TargetRules]" = web.AppKey("webhook_targets")
UPDATES_TASK: "web.AppKey[asyncio.Task[None]]" = web.AppKey("updates_task")
"""The running update consumer; the API is not ready without it."""
