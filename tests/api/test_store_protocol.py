"""Every ApplicationStore keeps the protocol's promises: each test runs on SQLite and PostgreSQL."""

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from lendo_api.rendering import application_fields
from lendo_api.store import (
    ApplicationStore,
    IdempotencyKey,
    KeyedCreation,
    StatusChange,
    StoredApplication,
    UpdateOutcome,
)
from lendo_api.timestamps import now
from tests.api.helpers import OpenStore

HOUR = timedelta(hours=1)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
async def store(open_store: OpenStore) -> ApplicationStore:
    return await open_store()


async def new(store: ApplicationStore, first_name: str = "Ada") -> StoredApplication:
    return await store.create(
        id=uuid.uuid4(), first_name=first_name, last_name="Lovelace", request_id="req-1"
    )


async def keyed(
    store: ApplicationStore,
    key: IdempotencyKey,
    keep_for: timedelta = HOUR,
) -> KeyedCreation:
    return await store.create_once(
        key=key,
        id=uuid.uuid4(),
        first_name="Ada",
        last_name="Lovelace",
        request_id=None,
        keep_for=keep_for,
    )


async def read(store: ApplicationStore, application_id: uuid.UUID) -> dict[str, object]:
    text = await store.get_json(application_id)
    assert text is not None
    fields: dict[str, object] = json.loads(text)
    return fields


async def walk(store: ApplicationStore, *, limit: int, status: str | None = None) -> list[str]:
    """The ids of every application, page by page, following the cursors."""
    ids: list[str] = []
    after: int | None = None
    while True:
        page = await store.list_page_json(status=status, limit=limit, after=after)  # type: ignore[arg-type]
        ids += [json.loads(item)["id"] for item in page.items]
        if page.next_after is None:
            return ids
        after = page.next_after


async def test_an_application_reads_back_exactly_as_created(store: ApplicationStore) -> None:
    created = await new(store, first_name='Åsa "Ö" \\ 名')

    text = await store.get_json(created.id)

    assert created.status == "pending"
    assert created.published_at is None
    # Byte for byte the create response's body: one application reads the same everywhere.
    assert text == orjson.dumps(application_fields(created)).decode()
    page = await store.list_page_json(status=None, limit=10, after=None)
    assert page.items == [text]
    assert TIMESTAMP.fullmatch(json.loads(text)["created_at"])


async def test_an_unknown_id_reads_as_nothing(store: ApplicationStore) -> None:
    await new(store)

    assert await store.get_json(uuid.uuid4()) is None


async def test_concurrent_reads_each_get_their_own_application(store: ApplicationStore) -> None:
    created = [await new(store, first_name=f"Ada {n}") for n in range(20)]
    unknown = uuid.uuid4()
    asked = [app.id for app in created] * 2 + [unknown, created[0].id]

    texts = await asyncio.gather(*(store.get_json(id) for id in asked))

    names = [None if text is None else json.loads(text)["first_name"] for text in texts]
    expected = [app.first_name for app in created] * 2 + [None, created[0].first_name]
    assert names == expected


async def test_pages_walk_every_application_once_in_creation_order(
    store: ApplicationStore,
) -> None:
    created = [str((await new(store)).id) for _ in range(12)]

    assert await walk(store, limit=5) == created
    assert await walk(store, limit=12) == created


async def test_pages_walk_concurrent_creates_each_exactly_once(store: ApplicationStore) -> None:
    created = await asyncio.gather(*(new(store) for _ in range(30)))

    walked = await walk(store, limit=7)

    assert sorted(walked) == sorted(str(app.id) for app in created)
    assert len(set(walked)) == 30


async def test_a_status_filter_pages_only_that_status(store: ApplicationStore) -> None:
    created = [await new(store) for _ in range(6)]
    await store.apply_updates([StatusChange(created[1].id, "completed", now())])
    await store.apply_updates([StatusChange(created[4].id, "completed", now())])

    assert await walk(store, limit=1, status="completed") == [
        str(created[1].id),
        str(created[4].id),
    ]
    assert len(await walk(store, limit=2, status="pending")) == 4
    assert await walk(store, limit=5, status="rejected") == []


async def test_applications_survive_closing_and_reopening(open_store: OpenStore) -> None:
    first = await open_store()
    created = await new(first)
    before = await first.get_json(created.id)
    await first.close()

    again = await open_store()

    assert await again.get_json(created.id) == before
    newer = await new(again)
    assert await walk(again, limit=10) == [str(created.id), str(newer.id)]


async def test_closing_finishes_the_creates_in_flight(open_store: OpenStore) -> None:
    first = await open_store()
    creating = [asyncio.ensure_future(new(first)) for _ in range(20)]
    await asyncio.sleep(0)

    await first.close()

    created = await asyncio.gather(*creating)
    again = await open_store()
    assert await walk(again, limit=100) == [str(app.id) for app in created]


async def test_updates_only_ever_move_pending_to_final(store: ApplicationStore) -> None:
    pending, already_final = await new(store), await new(store)
    await store.apply_updates([StatusChange(already_final.id, "rejected", now())])

    outcome = await store.apply_updates(
        [
            StatusChange(pending.id, "completed", now()),
            StatusChange(pending.id, "rejected", now()),
            StatusChange(already_final.id, "completed", now()),
            StatusChange(uuid.uuid4(), "completed", now()),
        ]
    )

    assert outcome == UpdateOutcome(applied=1, unchanged=2, unknown=1)
    now_completed = await read(store, pending.id)
    assert now_completed["status"] == "completed"
    assert now_completed["created_at"] == application_fields(pending)["created_at"]
    assert str(now_completed["updated_at"]) > str(now_completed["created_at"])
    assert (await read(store, already_final.id))["status"] == "rejected"
    assert await store.apply_updates([]) == UpdateOutcome(applied=0, unchanged=0, unknown=0)


async def test_concurrent_creates_with_one_key_make_one_application(
    store: ApplicationStore,
) -> None:
    key = IdempotencyKey(scope="client-a", key="k-1", body_hash="h-1")

    results = await asyncio.gather(*(keyed(store, key) for _ in range(10)))

    assert sum(result.created for result in results) == 1
    assert len({result.application.id for result in results}) == 1
    assert {result.body_hash for result in results} == {"h-1"}
    assert await store.count_by_status() == {"pending": 1}


async def test_a_reused_key_returns_the_first_application_and_its_body_hash(
    store: ApplicationStore,
) -> None:
    first = await keyed(store, IdempotencyKey("client-a", "k-1", "h-1"))

    reused = await keyed(store, IdempotencyKey("client-a", "k-1", "h-2"))
    other_scope = await keyed(store, IdempotencyKey("client-b", "k-1", "h-2"))

    assert first.created
    assert not reused.created
    assert reused.application == first.application
    assert reused.body_hash == "h-1"
    assert other_scope.created
    assert other_scope.application.id != first.application.id


async def test_a_key_older_than_its_keeping_time_creates_anew(store: ApplicationStore) -> None:
    key = IdempotencyKey("client-a", "k-1", "h-1")
    first = await keyed(store, key)

    again = await keyed(store, IdempotencyKey("client-a", "k-1", "h-2"), keep_for=timedelta(0))

    assert again.created
    assert again.application.id != first.application.id
    assert (await keyed(store, key)).application.id == again.application.id


async def test_purging_forgets_only_keys_older_than_asked(store: ApplicationStore) -> None:
    key = IdempotencyKey("client-a", "k-1", "h-1")
    first = await keyed(store, key)

    assert await store.purge_idempotency_keys(older_than=HOUR) == 0
    assert not (await keyed(store, key)).created
    assert await store.purge_idempotency_keys(older_than=timedelta(0)) == 1

    again = await keyed(store, key)
    assert again.created
    assert again.application.id != first.application.id
    assert await store.get_json(first.application.id) is not None


async def test_never_published_are_due_first_then_the_longest_quiet(
    store: ApplicationStore,
) -> None:
    quiet_longest, quiet, never, final = [await new(store) for _ in range(4)]
    await store.mark_published([quiet_longest.id])
    await store.mark_published([quiet.id])
    await store.apply_updates([StatusChange(final.id, "completed", now())])

    due = await store.due_for_publish(older_than=timedelta(0), limit=10)

    assert [app.id for app in due] == [never.id, quiet_longest.id, quiet.id]
    assert due[0] == never
    assert due[1].published_at is not None


async def test_published_applications_are_due_again_only_after_the_quiet_time(
    store: ApplicationStore,
) -> None:
    published, unpublished = await new(store), await new(store)
    await store.mark_published([published.id])

    due = await store.due_for_publish(older_than=HOUR, limit=10)

    assert [app.id for app in due] == [unpublished.id]


async def test_a_sweep_takes_at_most_its_limit_oldest_first(store: ApplicationStore) -> None:
    created = [await new(store) for _ in range(5)]

    due = await store.due_for_publish(older_than=HOUR, limit=3)

    assert [app.id for app in due] == [app.id for app in created[:3]]


async def test_counts_by_status_leave_out_statuses_with_none(store: ApplicationStore) -> None:
    assert await store.count_by_status() == {}
    created = [await new(store) for _ in range(3)]
    await store.apply_updates([StatusChange(created[0].id, "rejected", now())])

    assert await store.count_by_status() == {"pending": 2, "rejected": 1}
    assert await store.check()


async def test_a_failed_application_keeps_its_reason_and_never_changes_by_itself(
    store: ApplicationStore,
) -> None:
    failing, other = await new(store), await new(store)
    reason = "the request payload is not valid."

    await store.apply_updates([StatusChange(failing.id, "failed", now(), reason)])
    later = await store.apply_updates([StatusChange(failing.id, "completed", now())])

    assert later == UpdateOutcome(applied=0, unchanged=1, unknown=0)
    failed = await read(store, failing.id)
    assert (failed["status"], failed["failure_reason"]) == ("failed", reason)
    assert (await read(store, other.id))["failure_reason"] is None
    assert await walk(store, limit=10, status="failed") == [str(failing.id)]
    assert [app.id for app in await store.due_for_publish(older_than=timedelta(0), limit=10)] == [
        other.id
    ]
    assert await store.count_by_status() == {"failed": 1, "pending": 1}


async def test_requeueing_puts_failed_applications_back_to_pending_and_unpublished(
    store: ApplicationStore,
) -> None:
    first, second, decided = await new(store), await new(store), await new(store)
    await store.mark_published([first.id, second.id, decided.id])
    await store.apply_updates(
        [
            StatusChange(first.id, "failed", now(), "refused"),
            StatusChange(second.id, "failed", now(), "refused"),
            StatusChange(decided.id, "completed", now()),
        ]
    )

    assert await store.requeue_failed([first.id, decided.id]) == [first.id]
    assert (await read(store, first.id))["status"] == "pending"
    assert (await read(store, first.id))["failure_reason"] is None
    assert (await read(store, decided.id))["status"] == "completed"
    # Unpublished again: the sweep hands it to the bank at once.
    assert [app.id for app in await store.due_for_publish(older_than=HOUR, limit=10)] == [first.id]
    assert await store.requeue_failed(None) == [second.id]
    assert await store.requeue_failed(None) == []


# --- the event log ---


async def history(store: ApplicationStore, application_id: uuid.UUID) -> list[dict[str, object]]:
    events = await store.application_events_json(application_id)
    assert events is not None
    return [json.loads(event) for event in events]


async def test_a_create_commits_its_created_event_with_the_application_as_read(
    store: ApplicationStore,
) -> None:
    created = await store.create(
        id=uuid.uuid4(), first_name="Åsa", last_name="Öberg", request_id=None, owner="key:a"
    )

    [event] = await history(store, created.id)

    assert set(event) == {"id", "type", "timestamp", "data"}
    assert re.fullmatch(r"evt_[0-9a-f]{32}", str(event["id"]))
    assert event["type"] == "application.created"
    assert event["timestamp"] == json.loads(await store.get_json(created.id) or "")["created_at"]
    assert event["data"] == await read(store, created.id)
    [logged] = await store.events_after(0, application_id=None, owner=None, limit=10)
    assert (logged.application_id, logged.owner, logged.type) == (
        created.id,
        "key:a",
        "application.created",
    )
    assert json.loads(logged.json) == event


async def test_a_keyed_create_writes_one_event_and_its_replay_none(store: ApplicationStore) -> None:
    key = IdempotencyKey("key:b", "k-1", "hash-1")
    first = await keyed(store, key)
    replay = await keyed(store, key)

    assert (first.created, replay.created) == (True, False)
    assert [event["type"] for event in await history(store, first.application.id)] == [
        "application.created"
    ]
    [logged] = await store.events_after(0, application_id=None, owner="key:b", limit=10)
    assert logged.application_id == first.application.id


async def test_a_failed_create_writes_no_event(store: ApplicationStore) -> None:
    taken = await new(store)
    others = [uuid.uuid4() for _ in range(3)]

    # Batched together: the one with a used id fails alone, the others commit with their events.
    results = await asyncio.gather(
        *(
            store.create(id=id, first_name="Ada", last_name="L", request_id=None)
            for id in [others[0], taken.id, others[1], others[2]]
        ),
        return_exceptions=True,
    )

    assert [isinstance(result, Exception) for result in results] == [False, True, False, False]
    logged = await store.events_after(0, application_id=None, owner=None, limit=10)
    assert [event.application_id for event in logged] == [taken.id, *others]
    assert len(await history(store, taken.id)) == 1


async def test_only_an_update_that_changes_the_application_writes_its_event(
    store: ApplicationStore,
) -> None:
    pending, final = await new(store), await new(store)
    decided_at = datetime(2026, 11, 2, 8, 30, 1, tzinfo=UTC)
    await store.apply_updates([StatusChange(final.id, "completed", decided_at)])

    outcome = await store.apply_updates(
        [
            StatusChange(final.id, "rejected", now()),
            StatusChange(pending.id, "failed", decided_at, failure_reason="invalid"),
            StatusChange(pending.id, "completed", now()),
            StatusChange(uuid.uuid4(), "completed", now()),
        ]
    )

    assert (outcome.applied, outcome.unchanged, outcome.unknown) == (1, 2, 1)
    [_, completed] = await history(store, final.id)
    [_, failed] = await history(store, pending.id)
    assert (completed["type"], failed["type"]) == ("application.completed", "application.failed")
    assert completed["data"] == await read(store, final.id)
    assert failed["data"] == await read(store, pending.id)
    assert failed["timestamp"] == (await read(store, pending.id))["updated_at"]
    assert (await read(store, pending.id))["decided_at"] == "2026-11-02T08:30:01.000000Z"
    assert await store.apply_updates([StatusChange(final.id, "completed", now())]) == (
        UpdateOutcome(applied=0, unchanged=1, unknown=0)
    )
    logged = await store.events_after(0, application_id=None, owner=None, limit=10)
    assert [event.type for event in logged] == [
        "application.created",
        "application.created",
        "application.completed",
        "application.failed",
    ]


async def test_the_log_reads_after_a_cursor_narrowed_by_application_and_owner(
    store: ApplicationStore,
) -> None:
    mine = await store.create(
        id=uuid.uuid4(), first_name="A", last_name="L", request_id=None, owner="key:mine"
    )
    theirs = await store.create(
        id=uuid.uuid4(), first_name="B", last_name="L", request_id=None, owner="key:theirs"
    )
    await store.apply_updates([StatusChange(mine.id, "completed", now())])

    everything = await store.events_after(0, application_id=None, owner=None, limit=10)
    cursors = [event.cursor for event in everything]
    assert cursors == sorted(set(cursors))
    assert len(cursors) == 3
    assert await store.last_event_cursor() == cursors[-1]
    assert await store.events_after(cursors[0], application_id=None, owner=None, limit=1) == [
        everything[1]
    ]
    assert [
        e.type for e in await store.events_after(0, application_id=mine.id, owner=None, limit=10)
    ] == [
        "application.created",
        "application.completed",
    ]
    assert await store.events_after(0, application_id=None, owner="key:theirs", limit=10) == [
        everything[1]
    ]
    assert everything[1].application_id == theirs.id
    assert await store.application_events_json(uuid.uuid4()) is None
