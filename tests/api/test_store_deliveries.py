"""Webhook deliveries as every store keeps them: fanned out, claimed, recorded, forgotten."""

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from lendo_api.postgres_store import PostgresStore
from lendo_api.publisher import SubmissionPublisher
from lendo_api.reconciler import Reconciler
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import ApplicationStore, StatusChange
from lendo_api.timestamps import now
from lendo_api.webhooks.deliveries import AttemptOutcome, DeliveryState, DueDelivery
from lendo_api.webhooks.registrations import StoredWebhook, new_webhook
from lendo_streams import StreamNames
from tests.api.helpers import OpenStore

HOUR = timedelta(hours=1)
CREATED = "application.created"
COMPLETED = "application.completed"


@pytest.fixture
async def store(open_store: OpenStore) -> ApplicationStore:
    return await open_store()


async def hook(
    store: ApplicationStore, owner: str = "", events: tuple[str, ...] = (CREATED,)
) -> StoredWebhook:
    # Port 9 (discard): nothing here sends; the store only keeps the address.
    webhook = new_webhook("http://127.0.0.1:9/hook", events, owner)
    await store.add_webhook(webhook)
    return webhook


async def create(store: ApplicationStore, owner: str = "") -> uuid.UUID:
    application = await store.create(
        id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", request_id=None, owner=owner
    )
    return application.id


async def claim(
    store: ApplicationStore,
    *,
    limit: int = 100,
    per_webhook: int = 100,
    skip: Sequence[str] = (),
    claim_for: timedelta = HOUR,
) -> list[DueDelivery]:
    return await store.claim_deliveries(
        limit=limit, per_webhook=per_webhook, skip_webhooks=skip, claim_for=claim_for
    )


def attempted(
    delivery: DueDelivery,
    state: DeliveryState,
    *,
    status_code: int | None = 200,
    next_attempt_at: datetime | None = None,
    attempted_at: datetime | None = None,
) -> AttemptOutcome:
    return AttemptOutcome(
        delivery_id=delivery.id,
        attempt=delivery.attempt,
        claim=delivery.claim,
        attempted_at=attempted_at or now(),
        duration=0.25,
        status_code=status_code,
        error=None if status_code else "connection refused",
        state=state,
        next_attempt_at=next_attempt_at,
    )


async def event_ids(store: ApplicationStore) -> list[str]:
    """The ids of every event of the log, oldest first."""
    events = await store.events_after(0, application_id=None, owner=None, limit=1000)
    return [json.loads(event.json)["id"] for event in events]


def sent(deliveries: Sequence[DueDelivery]) -> set[tuple[str, str]]:
    return {(delivery.webhook.id, delivery.event_id) for delivery in deliveries}


async def test_an_event_goes_to_the_owners_webhooks_wanting_its_type_registered_before_it(
    store: ApplicationStore,
) -> None:
    created = await hook(store, owner="a")
    completed = await hook(store, owner="a", events=(COMPLETED,))
    await hook(store, owner="b")
    first = await create(store, owner="a")
    later = await hook(store, owner="a", events=(COMPLETED, CREATED))
    await create(store, owner="a")
    await store.apply_updates([StatusChange(first, "completed", now())])
    await create(store, owner="b-not-a")

    deliveries = await claim(store)

    one, two, done, _ = await event_ids(store)
    assert sent(deliveries) == {
        (created.id, one),
        (created.id, two),
        (later.id, two),
        (completed.id, done),
        (later.id, done),
    }
    assert {delivery.attempt for delivery in deliveries} == {1}
    assert all(f'"type":"{COMPLETED}"' in d.body for d in deliveries if d.event_id == done)


async def test_a_claim_takes_at_most_limit_and_per_webhook_oldest_first_and_skips_as_asked(
    store: ApplicationStore,
) -> None:
    hooks = [await hook(store) for _ in range(3)]
    for _ in range(4):
        await create(store)
    events = await event_ids(store)

    some = await claim(store, per_webhook=2, skip=[hooks[2].id])
    fewer = await claim(store, limit=3)
    rest = await claim(store)

    assert sent(some) == {(webhook.id, event) for webhook in hooks[:2] for event in events[:2]}
    assert len(fewer) == 3
    assert sent(some) | sent(fewer) | sent(rest) == {(w.id, e) for w in hooks for e in events}
    assert len(some) + len(fewer) + len(rest) == 12


async def test_a_claimed_delivery_comes_back_under_a_new_claim_once_its_claim_lapses(
    store: ApplicationStore,
) -> None:
    await hook(store)
    await create(store)
    await create(store)

    [held] = await claim(store, limit=1, claim_for=HOUR)
    # A claim that lapses at once stands for one whose claimer died long ago.
    [lapsing] = await claim(store, limit=1, claim_for=timedelta(0))
    [again] = await claim(store)

    assert (held.attempt, lapsing.attempt) == (1, 1)
    assert held.id != lapsing.id
    assert (again.id, again.event_id) == (lapsing.id, lapsing.event_id)
    # No attempt was recorded: the lapsed claim used up no retry of the schedule.
    assert (again.attempt, again.claim) == (1, lapsing.claim + 1)


async def test_an_attempt_of_a_lapsed_claim_is_recorded_but_the_newer_claim_decides(
    store: ApplicationStore,
) -> None:
    webhook = await hook(store)
    await create(store)
    [lapsed] = await claim(store, claim_for=timedelta(0))
    [newer] = await claim(store)

    await store.record_attempts([attempted(lapsed, "delivered")])
    after_lapsed = await store.webhook_attempts(webhook.id, "", limit=10)
    await store.record_attempts([attempted(newer, "failed", status_code=500)])
    after_newer = await store.webhook_attempts(webhook.id, "", limit=10)

    assert after_lapsed is not None
    assert [(a.attempt, a.state) for a in after_lapsed] == [(1, "pending")]
    assert after_newer is not None
    assert [(a.attempt, a.status_code, a.state) for a in after_newer] == [
        (1, 500, "failed"),
        (1, 200, "failed"),
    ]


async def test_a_pending_outcome_makes_the_delivery_due_at_its_next_attempt_not_before(
    store: ApplicationStore,
) -> None:
    webhook = await hook(store)
    await create(store)
    await create(store)
    retry_now, retry_later = await claim(store)
    later = now() + HOUR

    await store.record_attempts(
        [
            attempted(retry_now, "pending", status_code=503, next_attempt_at=now()),
            attempted(retry_later, "pending", status_code=None, next_attempt_at=later),
        ]
    )
    [again] = await claim(store)
    attempts = await store.webhook_attempts(webhook.id, "", limit=10)

    assert (again.id, again.attempt) == (retry_now.id, 2)
    assert attempts is not None
    [waiting] = [a for a in attempts if a.event_id == retry_later.event_id]
    assert (waiting.state, waiting.next_attempt_at) == ("pending", later)
    assert (waiting.status_code, waiting.error) == (None, "connection refused")


async def test_delivered_and_failed_deliveries_are_never_claimed_again(
    store: ApplicationStore,
) -> None:
    webhook = await hook(store)
    await create(store)
    await create(store)
    # Claims that lapse at once: only the outcome keeps them from being claimed again.
    delivered, failed = await claim(store, claim_for=timedelta(0))

    await store.record_attempts(
        [attempted(delivered, "delivered"), attempted(failed, "failed", status_code=410)]
    )

    assert await claim(store) == []
    attempts = await store.webhook_attempts(webhook.id, "", limit=10)
    assert attempts is not None
    assert sorted(a.state for a in attempts) == ["delivered", "failed"]
    assert {a.next_attempt_at for a in attempts} == {None}


async def test_deleting_a_webhook_forgets_its_deliveries_and_attempts(
    store: ApplicationStore,
) -> None:
    gone = await hook(store)
    kept = await hook(store)
    await create(store)
    await create(store)
    claimed = await claim(store, per_webhook=1)
    await store.record_attempts(
        [attempted(d, "pending", status_code=500, next_attempt_at=now()) for d in claimed]
    )

    assert await store.delete_webhook(gone.id, "")
    # An attempt finishing after the delete is not recorded, and fails nothing.
    await store.record_attempts([attempted(d, "delivered") for d in claimed])
    await store.add_webhook(gone)  # the same id again: it starts with no history

    assert await store.webhook_attempts(gone.id, "", limit=10) == []
    remaining = await claim(store)
    assert {delivery.webhook.id for delivery in remaining} == {kept.id}
    kept_attempts = await store.webhook_attempts(kept.id, "", limit=10)
    assert kept_attempts is not None
    # Newest first, each showing its delivery's state now.
    assert [(a.status_code, a.state) for a in kept_attempts] == [
        (200, "delivered"),
        (500, "delivered"),
    ]


async def test_attempts_list_newest_first_only_for_the_webhooks_owner(
    store: ApplicationStore,
) -> None:
    webhook = await hook(store, owner="a")
    await create(store, owner="a")
    await create(store, owner="a")
    first, second = await claim(store)
    start = now()
    await store.record_attempts(
        [attempted(first, "pending", status_code=500, next_attempt_at=now(), attempted_at=start)]
    )
    [third] = await claim(store)
    await store.record_attempts([attempted(second, "delivered"), attempted(third, "delivered")])

    newest = await store.webhook_attempts(webhook.id, "a", limit=2)
    every = await store.webhook_attempts(webhook.id, "a", limit=10)

    assert newest is not None
    assert every is not None
    assert [(a.event_id, a.attempt) for a in newest] == [
        (third.event_id, 2),
        (second.event_id, 1),
    ]
    assert len(every) == 3
    assert every[2].attempted_at == start
    assert (every[2].event_type, every[2].state) == (CREATED, "delivered")
    assert every[2].duration == pytest.approx(0.25)
    assert await store.webhook_attempts(webhook.id, "b", limit=10) is None
    assert await store.webhook_attempts("wh_unknown", "a", limit=10) is None


async def test_two_replicas_claiming_at_once_never_take_the_same_delivery(
    database_url: str,
) -> None:
    replicas = [
        await PostgresStore.open(database_url, min_size=1, max_size=4, claim_for=HOUR)
        for _ in range(2)
    ]
    try:
        for _ in range(4):
            await hook(replicas[0])
        for _ in range(30):
            await create(replicas[1])
        taken: list[int] = []
        while len(taken) < 120:
            # Each replica claims three times at once, as its dispatcher's looks may overlap.
            rounds = await asyncio.gather(
                *(claim(r, limit=5, per_webhook=2) for r in replicas for _ in range(3))
            )
            ids = [delivery.id for claimed in rounds for delivery in claimed]
            assert len(ids) == len(set(ids))
            taken += ids
    finally:
        for replica in replicas:
            await replica.close()

    assert len(taken) == len(set(taken)) == 120


async def test_purging_forgets_finished_deliveries_and_their_attempts_never_pending_ones(
    store: ApplicationStore,
) -> None:
    webhook = await hook(store)
    for _ in range(3):
        await create(store)
    delivered, failed, pending = await claim(store)
    await store.record_attempts(
        [
            attempted(delivered, "delivered"),
            attempted(failed, "failed", status_code=410),
            attempted(pending, "pending", status_code=503, next_attempt_at=now() + HOUR),
        ]
    )

    kept = await store.purge_deliveries(older_than=HOUR)
    purged = await store.purge_deliveries(older_than=timedelta(0))
    again = await store.purge_deliveries(older_than=timedelta(0))

    assert (kept, purged, again) == (0, 2, 0)
    attempts = await store.webhook_attempts(webhook.id, "", limit=10)
    assert attempts is not None
    assert [(a.event_id, a.state) for a in attempts] == [(pending.event_id, "pending")]
    # A delivery that finishes later is purged in its turn.
    await store.record_attempts([attempted(pending, "delivered")])
    assert await store.purge_deliveries(older_than=timedelta(0)) == 1
    assert await store.webhook_attempts(webhook.id, "", limit=10) == []


async def test_each_reconciler_round_purges_finished_deliveries(
    redis: Redis, streams: StreamNames, tmp_path: Path
) -> None:
    store = await SqliteStore.open(tmp_path / "store.sqlite3")
    try:
        webhook = await hook(store)
        await create(store)
        [delivery] = await claim(store)
        await store.record_attempts([attempted(delivery, "delivered")])
        reconciler = Reconciler(
            store,
            SubmissionPublisher(redis, streams.applications, store),
            interval=3600,
            republish_after=3600,
            batch=10,
            keep_keys_for=HOUR,
            keep_deliveries_for=timedelta(0),
        )
        running = asyncio.create_task(reconciler.run())
        async with asyncio.timeout(10):
            while reconciler.rounds == 0:  # noqa: ASYNC110 - a counter, no event to wait on
                await asyncio.sleep(0.01)
        reconciler.stop()
        await running

        assert await store.webhook_attempts(webhook.id, "", limit=10) == []
    finally:
        await store.close()


async def test_an_attempt_recorded_while_its_webhook_is_deleted_is_dropped_not_failed(
    database_url: str,
) -> None:
    store = await PostgresStore.open(database_url, min_size=1, max_size=4, claim_for=HOUR)
    deleting = await asyncpg.connect(database_url)
    try:
        gone, kept = await hook(store), await hook(store)
        await create(store)
        claimed = await claim(store)
        deletion = deleting.transaction()
        await deletion.start()
        await deleting.execute("DELETE FROM webhooks WHERE id = $1", gone.id)
        recording = asyncio.create_task(
            store.record_attempts([attempted(d, "delivered") for d in claimed])
        )
        async with asyncio.timeout(10):
            # Until the recording waits for the deletion's lock.
            while not await deleting.fetchval(  # noqa: ASYNC110 - the server is polled
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ):
                await asyncio.sleep(0.01)
        await deletion.commit()
        await recording

        attempts = await store.webhook_attempts(kept.id, "", limit=10)
    finally:
        await deleting.close()
        await store.close()

    assert attempts is not None
    assert [a.state for a in attempts] == ["delivered"]
