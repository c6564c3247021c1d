"""``lendo-api copy-store``: a user who outgrows SQLite keeps every application, key and event."""

import asyncio
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from lendo_api.copy_store import copy_store
from lendo_api.postgres_store import PostgresStore
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import ApplicationStore, IdempotencyKey, StatusChange, StoredEvent
from lendo_api.timestamps import now
from lendo_api.webhooks.deliveries import AttemptOutcome, DeliveryState, DueDelivery
from lendo_api.webhooks.registrations import new_secret, new_webhook
from lendo_local.processes import console_script

HOUR = timedelta(hours=1)
CREATED = "application.created"
COMPLETED = "application.completed"


def copy(source: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LENDO_")}
    return subprocess.run(
        [console_script("lendo-api"), "copy-store", "--to", target, "--batch", "4"],
        env={**env, "LENDO_DB_PATH": str(source)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def everything(store: ApplicationStore) -> list[str]:
    """Every application's JSON, in creation order."""
    items: list[str] = []
    after: int | None = None
    while True:
        page = await store.list_page_json(status=None, limit=3, after=after)
        items += page.items
        if page.next_after is None:
            return items
        after = page.next_after


async def test_every_application_and_key_reads_the_same_after_the_copy_and_a_rerun(
    tmp_path: Path, database_url: str
) -> None:
    source = tmp_path / "lendo.sqlite3"
    sqlite = await SqliteStore.open(source)
    created = [
        await sqlite.create(id=uuid.uuid4(), first_name=f"Åsa {n}", last_name="Ö", request_id=None)
        for n in range(9)
    ]
    keyed = await sqlite.create_once(
        key=IdempotencyKey("client-a", "order-42", "h-1"),
        id=uuid.uuid4(),
        first_name="Ada",
        last_name="Lovelace",
        request_id=None,
        keep_for=HOUR,
    )
    await sqlite.apply_updates([StatusChange(created[2].id, "completed", now())])
    await sqlite.mark_published([created[0].id])
    before = await everything(sqlite)

    first = copy(source, database_url)
    # The API went on with the file: a later decision, and a newer application.
    await sqlite.apply_updates([StatusChange(created[5].id, "rejected", now())])
    newer = await sqlite.create(id=uuid.uuid4(), first_name="Grace", last_name="H", request_id=None)
    after = await everything(sqlite)
    await sqlite.close()
    again = copy(source, database_url)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert "copied 11 applications, 1 idempotency keys, 0 webhooks, 13 events" in again.stdout
    postgres = await PostgresStore.open(database_url, min_size=1, max_size=2, claim_for=HOUR)
    try:
        assert await everything(postgres) == after
        assert len(before) == len(after) - 1
        assert json.loads(after[-1])["id"] == str(newer.id)
        assert json.loads(after[5])["status"] == "rejected"
        replay = await postgres.create_once(
            key=IdempotencyKey("client-a", "order-42", "h-1"),
            id=uuid.uuid4(),
            first_name="Ada",
            last_name="Lovelace",
            request_id=None,
            keep_for=HOUR,
        )
        due = await postgres.due_for_publish(older_than=HOUR, limit=100)
    finally:
        await postgres.close()
    assert not replay.created
    assert replay.application.id == keyed.application.id
    assert created[0].id not in {application.id for application in due}


def attempt(
    delivery: DueDelivery,
    state: DeliveryState,
    status_code: int,
    next_attempt_at: datetime | None = None,
) -> AttemptOutcome:
    return AttemptOutcome(
        delivery_id=delivery.id,
        attempt=delivery.attempt,
        claim=delivery.claim,
        attempted_at=now(),
        duration=0.1,
        status_code=status_code,
        error=None,
        state=state,
        next_attempt_at=next_attempt_at,
    )


def event_id(event: StoredEvent) -> str:
    text: str = json.loads(event.json)["id"]
    return text


def test_a_missing_file_fails_with_one_line(tmp_path: Path, database_url: str) -> None:
    result = copy(tmp_path / "none.sqlite3", database_url)

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "none.sqlite3" in line
    assert not (tmp_path / "none.sqlite3").exists()


async def test_events_webhooks_and_deliveries_carry_over_with_their_cursors_and_no_new_fan_out(
    tmp_path: Path, database_url: str
) -> None:
    source = tmp_path / "lendo.sqlite3"
    sqlite = await SqliteStore.open(source)
    [kept, deleted, rotated] = [
        new_webhook("http://127.0.0.1:9/", (CREATED, COMPLETED), owner="client-a") for _ in range(3)
    ]
    for webhook in (kept, deleted, rotated):
        await sqlite.add_webhook(webhook)
    created = [
        await sqlite.create(
            id=uuid.uuid4(), first_name="Åsa", last_name="Ö", request_id=None, owner="client-a"
        )
        for _ in range(3)
    ]
    first, second, third = await sqlite.claim_deliveries(
        limit=10, per_webhook=10, skip_webhooks=[deleted.id, rotated.id], claim_for=HOUR
    )
    await sqlite.record_attempts(
        [attempt(first, "delivered", 204), attempt(second, "pending", 503, now() + HOUR)]
    )
    # A client of the file's API read the log this far.
    resumed_at = (await sqlite.events_after(0, application_id=None, owner=None, limit=2))[-1].cursor

    await asyncio.to_thread(copy_store, source, database_url, batch=2)
    # The API went on with the file: a decision, an attempt, a deletion, a rotation.
    await sqlite.apply_updates([StatusChange(created[0].id, "completed", now())])
    await sqlite.record_attempts([attempt(third, "delivered", 200)])
    assert await sqlite.delete_webhook(deleted.id, "client-a")
    await sqlite.rotate_webhook_secret(
        rotated.id, "client-a", secret=new_secret(), previous_until=now() + HOUR
    )
    log = await sqlite.events_after(0, application_id=None, owner=None, limit=100)
    webhooks = await sqlite.webhooks_of("client-a")
    attempts = await sqlite.webhook_attempts(kept.id, "client-a", limit=100)
    await sqlite.close()
    copied = await asyncio.to_thread(copy_store, source, database_url, batch=2)

    postgres = await PostgresStore.open(database_url, min_size=1, max_size=2, claim_for=HOUR)
    try:
        assert await postgres.events_after(0, application_id=None, owner=None, limit=100) == log
        after_resume = await postgres.events_after(
            resumed_at, application_id=None, owner=None, limit=100
        )
        assert await postgres.webhooks_of("client-a") == webhooks
        assert await postgres.webhook_attempts(kept.id, "client-a", limit=100) == attempts
        due = await postgres.claim_deliveries(
            limit=100, per_webhook=100, skip_webhooks=[], claim_for=HOUR
        )
        newer = await postgres.create(
            id=uuid.uuid4(), first_name="Grace", last_name="H", request_id=None, owner="client-a"
        )
        fanned = await postgres.claim_deliveries(
            limit=100, per_webhook=100, skip_webhooks=[], claim_for=HOUR
        )
        newest = await postgres.events_after(
            log[-1].cursor, application_id=None, owner=None, limit=100
        )
    finally:
        await postgres.close()

    assert (copied.webhooks, copied.events, copied.deliveries, copied.attempts) == (2, 4, 8, 3)
    assert after_resume == log[2:]
    # Only what the file still had to send, each once, at the attempt it had reached.
    assert sorted((d.webhook.id, d.event_id, d.attempt) for d in due) == sorted(
        [(kept.id, event_id(log[3]), 1)] + [(rotated.id, event_id(event), 1) for event in log]
    )
    [event] = newest
    assert (event.application_id, event.cursor) == (newer.id, log[-1].cursor + 1)
    assert {(d.webhook.id, d.event_id) for d in fanned} == {
        (kept.id, event_id(event)),
        (rotated.id, event_id(event)),
    }
