"""What goes over the wire: request, response and error shapes of the HTTP API.

These models are the single source of truth: handlers parse with them and
render with them, and the OpenAPI document is generated from them.
"""

import base64
import binascii
import unicodedata
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from lendo_api.store import Status

MAX_NAME_LENGTH = 100
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_IDEMPOTENCY_KEY_LENGTH = 255

# Control, format and line/paragraph separators: invisible or line-breaking, so a
# name holding one would print differently in every system it reaches.
_FORBIDDEN_IN_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_MAX_SEQ = 2**63 - 1


def _clean_name(value: object) -> object:
    """Refuse invisible characters, then NFC-normalise and trim.

    Refused rather than removed: silently altering a legal name is worse than
    asking again. NFC makes one name typed on two keyboards the same string, and
    its length the number of characters a reader sees.
    """
    if not isinstance(value, str):
        return value
    if any(unicodedata.category(char) in _FORBIDDEN_IN_NAMES for char in value):
        raise ValueError("must not contain control, format or line-separator characters")
    return unicodedata.normalize("NFC", value).strip()


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH), BeforeValidator(_clean_name)]


def encode_cursor(seq: int) -> str:
    """The opaque text of a listing position, as clients see it."""
    return base64.urlsafe_b64encode(str(seq).encode()).rstrip(b"=").decode()


def _decode_cursor(value: object) -> int:
    """Accept only cursors this API could have produced, so a tampered one is a 422."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            digits = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            seq = int(digits) if digits.isdigit() else -1
        except (binascii.Error, ValueError):
            seq = -1
        if 0 <= seq <= _MAX_SEQ and encode_cursor(seq) == value:
            return seq
    raise ValueError("is not a cursor returned by this API")


Cursor = Annotated[
    int,
    PlainValidator(_decode_cursor),
    PlainSerializer(encode_cursor, return_type=str),
    WithJsonSchema({"type": "string", "description": "Opaque position in a listing."}),
]
"""A position in a listing; an ``int`` in code, opaque text on the wire."""


class NewApplication(BaseModel):
    """The body of ``POST /api/applications``."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name = Field(
        description="Trimmed and NFC-normalised; control and format characters are refused."
    )
    last_name: Name = Field(
        description="Trimmed and NFC-normalised; control and format characters are refused."
    )


class CreateHeaders(BaseModel):
    """The headers of ``POST /api/applications`` that change what it does."""

    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique printable ASCII text, e.g. a UUID, chosen by the client. "
        "A repeated request with the same key and body returns the application of the "
        "first (200) instead of creating another; with another body it is refused (409).",
    )


class ApplicationPath(BaseModel):
    """The path parameters of ``/api/applications/{id}``."""

    id: UUID


class ApplicationQuery(BaseModel):
    """The query of ``GET /api/applications``; unknown parameters are refused as likely typos."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = Field(
        default=None, description="Only applications with this status; all when absent."
    )
    limit: int = Field(
        default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Largest page size."
    )
    cursor: Cursor | None = Field(
        default=None,
        description="The next_cursor of the previous page; the first page when absent.",
    )


class Application(BaseModel):
    """An application as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    first_name: str
    last_name: str
    status: Status = Field(
        description="pending until the bank decides; then completed (granted) or rejected, "
        "never to change again. failed: the bank kept refusing the application itself as "
        "invalid (an integration fault, not a decision); it stays failed until an operator "
        "puts it back to pending."
    )
    created_at: datetime
    updated_at: datetime = Field(description="When the status last changed.")
    failure_reason: str | None = Field(
        default=None, description="Why the application is failed; null in every other status."
    )


class ApplicationPage(BaseModel):
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[Application]
    next_cursor: Cursor | None = Field(description="Absent (null) on the last page.")


class Health(BaseModel):
    """The body of ``GET /healthz``."""

    status: Literal["ok"] = "ok"


class FieldError(BaseModel):
    """One offending input field and what is wrong with it."""

    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document: the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    """Present on invalid input: every offending field, not only the first."""
