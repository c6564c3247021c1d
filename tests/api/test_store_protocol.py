"""Every ApplicationStore keeps the protocol's promises: each test runs on SQLite and PostgreSQL."""

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from lendo_api.postgres_store import PostgresStore
from lendo_api.rendering import application_fields
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import (
    ApplicationStore,
    IdempotencyKey,
    KeyedCreation,
    StatusChange,
    StoredApplication,
    UpdateOutcome,
)

OpenStore = Callable[[], Awaitable[ApplicationStore]]
HOUR = timedelta(hours=1)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens the store under test on this test's own database; each one opened is closed after."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        async def open_sqlite() -> ApplicationStore:
            return await SqliteStore.open(path)

        opener: OpenStore = open_sqlite
    else:
        url: str = request.getfixturevalue("database_url")

        async def open_postgres() -> ApplicationStore:
            return await PostgresStore.open(
                url, min_size=1, max_size=4, claim_for=timedelta(seconds=30)
            )

        opener = open_postgres
    opened: list[ApplicationStore] = []

    async def open_one() -> ApplicationStore:
        store = await opener()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


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
    await store.apply_updates([StatusChange(created[1].id, "completed")])
    await store.apply_updates([StatusChange(created[4].id, "completed")])

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
    await store.apply_updates([StatusChange(already_final.id, "rejected")])

    outcome = await store.apply_updates(
        [
            StatusChange(pending.id, "completed"),
            StatusChange(pending.id, "rejected"),
            StatusChange(already_final.id, "completed"),
            StatusChange(uuid.uuid4(), "completed"),
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
    await store.apply_updates([StatusChange(final.id, "completed")])

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
    await store.apply_updates([StatusChange(created[0].id, "rejected")])

    assert await store.count_by_status() == {"pending": 2, "rejected": 1}
    assert await store.check()


async def test_a_failed_application_keeps_its_reason_and_never_changes_by_itself(
    store: ApplicationStore,
) -> None:
    failing, other = await new(store), await new(store)
    reason = "the request payload is not valid."

    await store.apply_updates([StatusChange(failing.id, "failed", reason)])
    later = await store.apply_updates([StatusChange(failing.id, "completed")])

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
            StatusChange(first.id, "failed", "refused"),
            StatusChange(second.id, "failed", "refused"),
            StatusChange(decided.id, "completed"),
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
