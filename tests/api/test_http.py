"""The HTTP surface of lendo-api: every endpoint, every error, pagination."""

import io
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from lendo_api.app_keys import APPLICATIONS, STORE
from lendo_api.settings import ApiSettings
from lendo_api.store import StatusChange
from lendo_api.timestamps import now, timestamp_text
from lendo_streams import StreamNames
from tests.api.helpers import count

Client = TestClient[web.Request, web.Application]

PROBLEM_JSON = "application/problem+json"


async def create(client: Client, first_name: str = "Ada", last_name: str = "Lovelace") -> Any:
    response = await client.post(
        "/api/applications", json={"first_name": first_name, "last_name": last_name}
    )
    assert response.status == 201
    return await response.json()


async def problem(response: Any, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem document with ``status`` and return it."""
    assert response.status == status
    assert response.content_type == PROBLEM_JSON
    body: dict[str, Any] = await response.json()
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["detail"]
    return body


def parse_timestamp(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text)


# --- create and fetch ---


@pytest.mark.both_stores
async def test_create_returns_the_pending_application_and_where_to_find_it(
    client: Client,
) -> None:
    before = datetime.now(UTC)
    response = await client.post(
        "/api/applications", json={"first_name": "Ada", "last_name": "Lovelace"}
    )

    assert response.status == 201
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {
        "id",
        "first_name",
        "last_name",
        "status",
        "created_at",
        "updated_at",
        "failure_reason",
        "decided_at",
    }
    assert body["failure_reason"] is None
    assert body["decided_at"] is None
    assert uuid.UUID(body["id"]).version == 4
    assert (body["first_name"], body["last_name"], body["status"]) == (
        "Ada",
        "Lovelace",
        "pending",
    )
    created_at = parse_timestamp(body["created_at"])
    assert before - timedelta(seconds=1) <= created_at <= datetime.now(UTC)
    assert body["updated_at"] == body["created_at"]
    assert response.headers["Location"] == f"/api/applications/{body['id']}"

    fetched = await client.get(response.headers["Location"])
    assert fetched.status == 200
    assert await fetched.json() == body


def test_timestamps_are_written_in_utc_always_with_microseconds() -> None:
    # Fixed width: the store compares them as text, and a page shows them verbatim.
    whole_second = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    stockholm = datetime(2025, 3, 14, 10, 26, 53, 7, tzinfo=timezone(timedelta(hours=1)))

    assert timestamp_text(whole_second) == "2025-03-14T09:26:53.000000Z"
    assert timestamp_text(stockholm) == "2025-03-14T09:26:53.000007Z"


@pytest.mark.both_stores
async def test_every_create_gets_its_own_id(client: Client) -> None:
    first, second = await create(client), await create(client)

    assert first["id"] != second["id"]


async def test_the_request_id_is_taken_from_the_client_or_made_up_and_echoed(
    client: Client,
) -> None:
    given = await client.post(
        "/api/applications",
        json={"first_name": "Ada", "last_name": "Lovelace"},
        headers={"X-Request-ID": "trace-42"},
    )
    made_up = await client.get("/api/applications")
    on_error = await client.get(f"/api/applications/{uuid.uuid4()}", headers={"X-Request-ID": "e"})

    assert given.headers["X-Request-ID"] == "trace-42"
    assert made_up.headers["X-Request-ID"]
    assert on_error.headers["X-Request-ID"] == "e"


async def test_an_unacceptable_request_id_is_replaced_by_a_new_one_each_time(
    client: Client,
) -> None:
    offered = ["two words", "x" * 129, "", "naïve"]

    answered = [
        (await client.get("/healthz", headers={"X-Request-ID": sent})).headers["X-Request-ID"]
        for sent in offered
    ]

    assert all(re.fullmatch("[0-9a-f]{32}", made_up) for made_up in answered), answered
    assert len(set(answered)) == len(offered)


async def test_a_crash_is_a_500_problem_logged_and_counted_under_its_request_id(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(application_id: uuid.UUID) -> None:
        raise RuntimeError("a bug in the domain")

    monkeypatch.setattr(client.app[APPLICATIONS], "get_json", crash)
    captured: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
    ]
    with structlog.testing.capture_logs(captured) as logs:
        response = await client.get(
            f"/api/applications/{uuid.uuid4()}", headers={"X-Request-ID": "crash-1"}
        )
    scraped = await (await client.get("/metrics")).text()

    body = await problem(response, 500)
    assert "a bug in the domain" not in body["detail"]
    assert response.headers["X-Request-ID"] == "crash-1"
    [failed] = [line for line in logs if line["log_level"] == "error"]
    assert (failed["event"], failed["request_id"]) == ("request_failed", "crash-1")
    assert "RuntimeError: a bug in the domain" in failed["exception"]
    assert (
        'lendo_api_http_requests_total{method="GET",route="/api/applications/{id}",status="500"}'
        " 1.0" in scraped
    )


@pytest.mark.both_stores
async def test_an_unknown_id_is_404(client: Client) -> None:
    missing = uuid.uuid4()

    body = await problem(await client.get(f"/api/applications/{missing}"), 404)

    assert str(missing) in body["detail"]


async def test_an_id_that_is_not_a_uuid_is_rejected_naming_the_field(client: Client) -> None:
    body = await problem(await client.get("/api/applications/not-a-uuid"), 422)

    assert "id" in body["detail"]
    assert [error["field"] for error in body["errors"]] == ["id"]


# --- invalid create requests ---


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"last_name": "Lovelace"}, ["first_name"]),
        ({}, ["first_name", "last_name"]),
        ({"first_name": "Ada", "last_name": "x" * 101}, ["last_name"]),
        ({"first_name": "", "last_name": "\u202eecalevoL"}, ["first_name", "last_name"]),
        ({"first_name": None, "last_name": "Lovelace"}, ["first_name"]),
        ({"first_name": 42, "last_name": "Lovelace"}, ["first_name"]),
        ({"first_name": ["Ada"], "last_name": "Lovelace"}, ["first_name"]),
        ({"first_name": "Ada", "last_name": "Lovelace", "status": "completed"}, ["status"]),
    ],
)
async def test_invalid_names_are_rejected_naming_each_field_and_change_nothing(
    client: Client,
    settings: ApiSettings,
    redis: Redis,
    streams: StreamNames,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    response = await client.post("/api/applications", json=body)

    problem_body = await problem(response, 422)
    assert [error["field"] for error in problem_body["errors"]] == fields
    assert all(error["message"] for error in problem_body["errors"])
    for field in fields:
        assert field in problem_body["detail"]
    assert "Location" not in response.headers
    assert count(settings) == 0
    assert await redis.xlen(streams.applications) == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"first_name": "Ada",}', b"\xff\xfe"])
async def test_malformed_json_is_400_and_changes_nothing(
    client: Client, settings: ApiSettings, raw: bytes
) -> None:
    response = await client.post(
        "/api/applications", data=raw, headers={"Content-Type": "application/json"}
    )

    await problem(response, 400)
    assert count(settings) == 0


@pytest.mark.parametrize("raw", [b"[]", b'["Ada", "Lovelace"]', b'"Ada"', b"42", b"null"])
async def test_a_body_that_is_not_an_object_is_422_and_changes_nothing(
    client: Client, settings: ApiSettings, raw: bytes
) -> None:
    response = await client.post(
        "/api/applications", data=raw, headers={"Content-Type": "application/json"}
    )

    body = await problem(response, 422)
    assert [error["field"] for error in body["errors"]] == ["body"]
    assert count(settings) == 0


async def test_an_oversized_body_is_413_and_changes_nothing(
    client: Client, settings: ApiSettings
) -> None:
    huge = io.BytesIO(b'{"first_name": "' + b"x" * 2_000_000 + b'", "last_name": "L"}')

    response = await client.post(
        "/api/applications", data=huge, headers={"Content-Type": "application/json"}
    )

    await problem(response, 413)
    assert count(settings) == 0


# --- listing ---


async def seed(client: Client, count: int) -> list[str]:
    """Create ``count`` applications directly in the store; return their ids in order."""
    store = client.app[STORE]
    ids = []
    for number in range(count):
        application = await store.create(
            id=uuid.uuid4(), first_name=f"First{number}", last_name="Last", request_id=None
        )
        ids.append(str(application.id))
    return ids


async def walk(client: Client, query: Mapping[str, str]) -> list[list[str]]:
    """Follow ``next_cursor`` from the first page to the last; return each page's ids."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params = dict(query) if cursor is None else {**query, "cursor": cursor}
        response = await client.get("/api/applications", params=params)
        assert response.status == 200
        body = await response.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


@pytest.mark.both_stores
async def test_listing_pages_through_all_applications_in_creation_order(client: Client) -> None:
    ids = await seed(client, 7)

    pages = await walk(client, {"limit": "3"})

    assert pages == [ids[0:3], ids[3:6], ids[6:7]]


@pytest.mark.both_stores
async def test_a_full_last_page_has_no_next_cursor_only_if_nothing_follows(
    client: Client,
) -> None:
    ids = await seed(client, 4)

    assert await walk(client, {"limit": "2"}) == [ids[0:2], ids[2:4]]
    assert await walk(client, {"limit": "4"}) == [ids]


@pytest.mark.both_stores
async def test_listing_by_status_pages_through_exactly_the_matching_applications(
    client: Client,
) -> None:
    ids = await seed(client, 8)
    await client.app[STORE].apply_updates(
        [
            StatusChange(uuid.UUID(ids[1]), "completed", now()),
            StatusChange(uuid.UUID(ids[4]), "completed", now()),
            StatusChange(uuid.UUID(ids[5]), "rejected", now()),
        ]
    )

    pending = await walk(client, {"status": "pending", "limit": "2"})
    completed = await walk(client, {"status": "completed", "limit": "1"})
    rejected = await walk(client, {"status": "rejected"})

    assert pending == [[ids[0], ids[2]], [ids[3], ids[6]], [ids[7]]]
    assert completed == [[ids[1]], [ids[4]]]
    assert rejected == [[ids[5]]]


@pytest.mark.both_stores
async def test_listing_shows_each_application_as_get_does(client: Client) -> None:
    created = await create(client)

    body = await (await client.get("/api/applications")).json()

    assert body == {"items": [created], "next_cursor": None}


@pytest.mark.both_stores
async def test_an_application_shows_when_the_decision_was_seen_once_final(
    client: Client,
) -> None:
    created = await create(client)
    decided_at = datetime(2026, 11, 2, 8, 30, 1, 250000, tzinfo=UTC)

    await client.app[STORE].apply_updates(
        [StatusChange(uuid.UUID(created["id"]), "rejected", decided_at)]
    )

    fetched = await (await client.get(f"/api/applications/{created['id']}")).json()
    listed = await (await client.get("/api/applications")).json()
    assert created["decided_at"] is None
    assert (fetched["status"], fetched["decided_at"]) == ("rejected", "2026-11-02T08:30:01.250000Z")
    assert listed["items"] == [fetched]


@pytest.mark.both_stores
async def test_names_needing_escapes_are_listed_exactly_as_created(client: Client) -> None:
    created = await create(client, first_name='Zoë "Z" O\'Neil\\', last_name="李 😀 </script>")

    body = await (await client.get("/api/applications")).json()

    assert body["items"] == [created]
    assert created["last_name"] == "李 😀 </script>"


@pytest.mark.both_stores
async def test_an_empty_listing_is_one_empty_page(client: Client) -> None:
    body = await (await client.get("/api/applications?status=completed")).json()

    assert body == {"items": [], "next_cursor": None}


@pytest.mark.both_stores
async def test_a_listing_holds_100_by_default_and_up_to_1000(client: Client) -> None:
    ids = await seed(client, 1001)

    default = await (await client.get("/api/applications")).json()
    largest = await (await client.get("/api/applications?limit=1000")).json()

    assert [item["id"] for item in default["items"]] == ids[:100]
    assert [item["id"] for item in largest["items"]] == ids[:1000]
    rest = await client.get("/api/applications", params={"cursor": largest["next_cursor"]})
    assert [item["id"] for item in (await rest.json())["items"]] == ids[1000:]


@pytest.mark.parametrize(
    ("cursor", "after"),
    [
        ("MA", 0),  # "0"
        ("MDA3", 7),  # "007": leading zeros name the same position
        ("OTk5OTk5OTk5OTk5OTk5OTk5OQ", None),  # 19 nines, past any position: the end
    ],
)
async def test_any_text_of_the_documented_cursor_form_names_a_position(
    client: Client, cursor: str, after: int | None
) -> None:
    ids = await seed(client, 9)
    document = await (await client.get("/api/openapi.json")).json()
    [parameter] = [
        p
        for p in document["paths"]["/api/applications"]["get"]["parameters"]
        if p["name"] == "cursor"
    ]

    response = await client.get("/api/applications", params={"cursor": cursor})

    assert re.search(parameter["schema"]["pattern"], cursor)
    assert response.status == 200
    listed = [item["id"] for item in (await response.json())["items"]]
    assert listed == ([] if after is None else ids[after:])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("status=approved", "status"),
        ("status=PENDING", "status"),
        ("cursor=", "cursor"),
        ("cursor=abc", "cursor"),
        ("cursor=!!!!", "cursor"),
        ("cursor=LTE", "cursor"),  # "-1"
        ("cursor=Nw==", "cursor"),  # "7", padded
        ("cursor=" + "OTk5" * 10, "cursor"),  # 30 digits, more than any position has
        ("statuss=pending", "statuss"),
    ],
)
async def test_invalid_listing_parameters_are_rejected_naming_the_field(
    client: Client, query: str, field: str
) -> None:
    body = await problem(await client.get(f"/api/applications?{query}"), 422)

    assert [error["field"] for error in body["errors"]] == [field]
    assert field in body["detail"]


# --- everything else ---


async def test_health_is_ok(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_an_unknown_path_is_a_404_problem(client: Client) -> None:
    body = await problem(await client.get("/api/nothing-here"), 404)

    assert "/api/nothing-here" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/applications", {"GET", "POST"}),
        ("PUT", "/api/applications", {"GET", "POST"}),
        ("POST", f"/api/applications/{uuid.uuid4()}", {"GET"}),
        ("PATCH", f"/api/applications/{uuid.uuid4()}", {"GET"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
async def test_a_wrong_method_is_a_405_problem_with_the_allowed_ones(
    client: Client, settings: ApiSettings, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path, json={"first_name": "A", "last_name": "B"})

    body = await problem(response, 405)
    assert method in body["detail"]
    assert allowed <= set(response.headers["Allow"].split(","))
    assert count(settings) == 0
