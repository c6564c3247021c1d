"""Names: which the API accepts and which it refuses, each for a reason, as its document says.

Every row is sent to the API, and checked against the rule the served
OpenAPI document states (the name schema's lengths and pattern), so the
table is also the proof that the document and the server agree.
"""

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from lendo_api.settings import ApiSettings
from lendo_streams import StreamNames
from tests.api.helpers import count

Client = TestClient[web.Request, web.Application]

ACCEPTED = [
    pytest.param("Ada", "Ada", id="plain ASCII"),
    pytest.param("Mary Ann", "Mary Ann", id="a space inside is part of the name"),
    pytest.param("  Åsa ", "Åsa", id="spaces around are trimmed"),
    pytest.param("\u00a0Jörg\u3000", "Jörg", id="no-break and ideographic spaces are trimmed too"),
    pytest.param("Ñúñez-O'Brien", "Ñúñez-O'Brien", id="hyphens and apostrophes"),
    pytest.param("O\u2019Connor", "O\u2019Connor", id="a typographic apostrophe"),
    pytest.param("李小龍", "李小龍", id="Han"),
    pytest.param("Σωκράτης", "Σωκράτης", id="Greek"),
    pytest.param("Mehr\u200cdad", "Mehr\u200cdad", id="ZWNJ inside a Persian name"),
    pytest.param(
        "\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937", id="ZWJ in a Devanagari conjunct"
    ),
    pytest.param("Zoe\u0308", "Zo\u00eb", id="a combining mark, stored composed (NFC)"),
    pytest.param("Nguye\u0302\u0303n", "Nguy\u1ec5n", id="two combining marks, composed"),
    pytest.param("A\U0001f600", "A\U0001f600", id="a character above the BMP"),
    pytest.param("Love\u200blace", "Love\u200blace", id="a zero-width space reorders nothing"),
    pytest.param("x" * 100, "x" * 100, id="100 characters, the most"),
    pytest.param(" " + "x" * 99, "x" * 99, id="100 characters as sent, spaces counted"),
    pytest.param("e\u0301" * 50, "\u00e9" * 50, id="100 characters as sent, 50 once composed"),
]

REFUSED = [
    pytest.param("", "1 to 100 characters", id="empty"),
    pytest.param("   ", "more than spaces", id="only spaces"),
    pytest.param("\u3000", "more than spaces", id="only an ideographic space"),
    pytest.param("x" * 101, "1 to 100 characters", id="101 characters"),
    pytest.param(" " + "x" * 100, "1 to 100 characters", id="101 characters as sent, 100 trimmed"),
    pytest.param("e\u0301" * 51, "1 to 100 characters", id="102 as sent, 51 once composed"),
    pytest.param("Ada\x00", "U+0000, a control character", id="NUL"),
    pytest.param("Ada\tLovelace", "U+0009, a control character", id="tab"),
    pytest.param("Ada\nLovelace", "U+000A, a control character", id="newline"),
    pytest.param("Ada\x7f", "U+007F, a control character", id="DEL"),
    pytest.param("Ada\x85", "U+0085, a control character", id="C1 next line"),
    pytest.param("Ada\u2028", "U+2028, a line or paragraph separator", id="line separator"),
    pytest.param("Ada\u2029", "U+2029, a line or paragraph separator", id="paragraph separator"),
    pytest.param("\u202eecalevoL", "U+202E, a bidirectional", id="right-to-left override"),
    pytest.param("Ada\u202a", "U+202A, a bidirectional", id="left-to-right embedding"),
    pytest.param("\u2066Ada\u2069", "U+2066, a bidirectional isolate", id="isolates"),
    pytest.param("Ada\ufdd0", "U+FDD0, a non-character", id="non-character in the BMP"),
    pytest.param("Ada\ufffe", "U+FFFE, a non-character", id="byte-order mark reversed"),
    pytest.param("Ada\U0010ffff", "U+10FFFF, a non-character", id="non-character of plane 16"),
    pytest.param("Ada\ud800", "U+D800, a surrogate", id="lone high surrogate"),
    pytest.param("\udc00Ada", "U+DC00, a surrogate", id="lone low surrogate"),
]


async def listed_names(client: Client) -> list[tuple[str, str]]:
    """The names of every application, as the store renders its listing."""
    page = await (await client.get("/api/applications")).json()
    return [(item["first_name"], item["last_name"]) for item in page["items"]]


async def document_allows(client: Client, name: str) -> bool:
    """Whether the served document's name schema allows ``name``."""
    document = await (await client.get("/api/openapi.json")).json()
    schema = document["components"]["schemas"]["NewApplication"]["properties"]["first_name"]
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate is no part of Unicode text, which is all a pattern reads.
        return False
    return (
        schema["minLength"] <= len(name) <= schema["maxLength"]
        and re.search(schema["pattern"], name) is not None
    )


@pytest.mark.both_stores
@pytest.mark.parametrize(("sent", "stored"), ACCEPTED)
async def test_a_real_name_is_accepted_and_stored_normalised(
    client: Client, sent: str, stored: str
) -> None:
    response = await client.post("/api/applications", json={"first_name": sent, "last_name": sent})

    assert response.status == 201
    created = await response.json()
    fetched = await (await client.get(f"/api/applications/{created['id']}")).json()
    assert (created["first_name"], created["last_name"]) == (stored, stored)
    assert (fetched["first_name"], fetched["last_name"]) == (stored, stored)
    assert await listed_names(client) == [(stored, stored)]
    assert await document_allows(client, sent)


@pytest.mark.parametrize(("sent", "why"), REFUSED)
async def test_a_name_with_what_only_harm_needs_is_refused_saying_why(
    client: Client, settings: ApiSettings, redis: Redis, streams: StreamNames, sent: str, why: str
) -> None:
    response = await client.post("/api/applications", json={"first_name": "Ada", "last_name": sent})

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    [error] = (await response.json())["errors"]
    assert error["field"] == "last_name"
    assert why in error["message"]
    assert count(settings) == 0
    assert await redis.xlen(streams.applications) == 0
    assert not await document_allows(client, sent)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"first_name": "Ada\\ud800", "last_name": "Lovelace"}', "first_name"),
        (b'{"first_name": "Ada", "last_name": "\\udfff"}', "last_name"),
        (b'{"first_name": "Ada", "last_name": "L", "\\ud800": 1}', "body"),
    ],
    ids=["in a value", "alone in a value", "in a key"],
)
async def test_an_escaped_lone_surrogate_is_invalid_input_not_malformed_json(
    client: Client, settings: ApiSettings, body: bytes, field: str
) -> None:
    response = await client.post(
        "/api/applications", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status == 422
    assert [error["field"] for error in (await response.json())["errors"]] == [field]
    assert count(settings) == 0


@pytest.mark.parametrize(
    "raw",
    [b'{"first_name": "Ada\\ud800', b"[" * 5000 + b"]" * 5000],
    ids=["cut short after a surrogate", "nested too deep"],
)
async def test_what_is_not_json_stays_malformed_json(client: Client, raw: bytes) -> None:
    response = await client.post(
        "/api/applications", data=raw, headers={"Content-Type": "application/json"}
    )

    assert response.status == 400


async def test_a_name_is_compared_normalised_so_a_retry_typed_otherwise_replays(
    client: Client,
) -> None:
    headers = {"Idempotency-Key": "order-7"}
    body: dict[str, Any] = {"first_name": "Zoe\u0308", "last_name": "Mehr\u200cdad"}
    first = await client.post("/api/applications", json=body, headers=headers)

    composed = {"first_name": " Zo\u00eb", "last_name": "Mehr\u200cdad"}
    retry = await client.post("/api/applications", json=composed, headers=headers)

    assert (first.status, retry.status) == (201, 200)
    assert (await retry.json())["id"] == (await first.json())["id"]
    assert await listed_names(client) == [("Zo\u00eb", "Mehr\u200cdad")]
