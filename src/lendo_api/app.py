"""The application factory: wiring, and the lifetime of every resource."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from redis.asyncio import Redis

from lendo_api.app_keys import (
    APPLICATIONS,
    EVENT_FEED,
    METRICS,
    RECONCILER,
    REDIS,
    REDIS_LOSS_WATCH,
    SETTINGS,
    STORE,
    UPDATES_TASK,
    WEBHOOK_TARGETS,
)
from lendo_api.applications import Applications
from lendo_api.auth import ApiKeyCheck
from lendo_api.event_feed import EventFeed
from lendo_api.metrics import ApiMetrics
from lendo_api.middleware import api_middleware
from lendo_api.openapi.document import setup_openapi
from lendo_api.pool_metrics import pool_snapshot
from lendo_api.postgres_store import PostgresStore
from lendo_api.publisher import SubmissionPublisher
from lendo_api.reconciler import Reconciler
from lendo_api.redis_loss import RedisGeneration, RedisLossWatch
from lendo_api.routes import setup_routes
from lendo_api.settings import ApiSettings
from lendo_api.stores import open_store
from lendo_api.updates import UpdateConsumer
from lendo_api.webhooks.dispatcher import DispatchSettings, WebhookDispatcher
from lendo_api.webhooks.targets import TargetRules


def create_app(settings: ApiSettings) -> web.Application:
    """Build the API; resources open on startup and close in reverse order on cleanup."""
    metrics = ApiMetrics()
    app = web.Application(
        middlewares=[api_middleware(ApiKeyCheck(settings.api_keys), metrics)],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[WEBHOOK_TARGETS] = TargetRules(
        allowed_hosts=settings.webhook_allowed_hosts,
        allow_private=settings.webhook_allow_private_targets,
    )
    app.cleanup_ctx.extend([_database, _events, _redis, _workers])
    # Event streams never end by themselves: they end here, before the server waits for
    # its handlers to finish.
    app.on_shutdown.append(_end_event_streams)
    setup_routes(app)
    setup_openapi(
        app,
        keys_required=bool(settings.api_keys),
        webhook_hosts=settings.webhook_allowed_hosts,
    )
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS])
    if isinstance(store, PostgresStore):
        app[METRICS].registry.register(pool_snapshot(store.pool_stats))
    app[STORE] = store
    yield
    await store.close()


async def _events(app: web.Application) -> AsyncIterator[None]:
    """Tail the store's event log for this process's event streams."""
    feed = EventFeed(app[STORE], interval=app[SETTINGS].events_poll_interval)
    await feed.start()
    app[EVENT_FEED] = feed
    task = asyncio.create_task(feed.run(), name="lendo-api-event-feed")
    # Decisions are read at once, not at the feed's next look (docs/architecture.md).
    notices = asyncio.create_task(
        app[STORE].follow_event_commits(feed.nudge), name="lendo-api-event-notices"
    )
    yield
    notices.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await notices
    feed.stop()
    await task


async def _end_event_streams(app: web.Application) -> None:
    app[EVENT_FEED].stop()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # No connection is made here: the API starts, and takes applications, without Redis.
    redis = Redis.from_url(
        str(settings.redis_url),
        decode_responses=False,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.update_block + settings.redis_timeout,
    )
    app[REDIS] = redis
    yield
    await redis.aclose()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """Wire the domain; run the update consumer, reconciler and dispatcher while the app lives."""
    settings, store, redis = app[SETTINGS], app[STORE], app[REDIS]
    publisher = SubmissionPublisher(redis, settings.streams.applications, store)
    keep_keys_for = timedelta(seconds=settings.idempotency_ttl)
    app[APPLICATIONS] = Applications(
        store,
        publisher,
        publish_timeout=settings.publish_timeout,
        keep_keys_for=keep_keys_for,
        crash_after_commit=settings.fault_crash_after_commit,
    )
    app[RECONCILER] = reconciler = Reconciler(
        store,
        publisher,
        interval=settings.reconcile_interval,
        republish_after=settings.republish_after,
        batch=settings.reconcile_batch,
        keep_keys_for=keep_keys_for,
        keep_deliveries_for=timedelta(seconds=settings.webhook_keep_deliveries),
    )
    consumer = UpdateConsumer(
        redis,
        store,
        settings.streams,
        consumer=settings.consumer_name,
        batch=settings.update_batch,
        block=settings.update_block,
        trim_interval=settings.trim_interval,
        dead_letter_maxlen=settings.dead_letter_maxlen,
        claim_idle=settings.update_claim_idle,
    )
    app[REDIS_LOSS_WATCH] = loss_watch = RedisLossWatch(
        RedisGeneration(redis, settings.streams.generation),
        reconciler,
        interval=settings.redis_check_interval,
    )
    dispatcher = WebhookDispatcher(
        store,
        app[WEBHOOK_TARGETS],
        app[EVENT_FEED],
        DispatchSettings(
            retry_schedule=settings.webhook_retry_schedule,
            timeout=settings.webhook_timeout,
            endpoint_concurrency=settings.webhook_endpoint_concurrency,
            concurrency=settings.webhook_concurrency,
            poll_interval=settings.webhook_poll_interval,
            claim_for=timedelta(seconds=settings.webhook_claim),
        ),
    )
    app[METRICS].watch(app[APPLICATIONS], consumer, reconciler, loss_watch, dispatcher)
    app[UPDATES_TASK] = asyncio.create_task(consumer.run(), name="lendo-api-updates")
    tasks = [
        app[UPDATES_TASK],
        asyncio.create_task(reconciler.run(), name="lendo-api-reconciler"),
        asyncio.create_task(loss_watch.run(), name="lendo-api-redis-loss"),
        asyncio.create_task(dispatcher.run(), name="lendo-api-webhooks"),
    ]
    yield
    consumer.stop()
    reconciler.stop()
    loss_watch.stop()
    dispatcher.stop()
    await asyncio.gather(*tasks)
