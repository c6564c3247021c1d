"""What goes over the wire: request, response and error shapes of the HTTP API.

These models are the single source of truth: handlers parse with them and
render with them, and the OpenAPI document is generated from them.
"""

import base64
import re
from datetime import datetime
from typing import Annotated, Literal, get_args
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

from lendo_api import names
from lendo_api.store import Status

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_IDEMPOTENCY_KEY_LENGTH = 255

_MAX_SEQ = 2**63 - 1


NAME_DESCRIPTION = (
    f"1 to {names.MAX_LENGTH} characters as sent, not only spaces; control characters, line "
    "separators, bidirectional embeddings, overrides and isolates, surrogates and "
    "non-characters are refused. Stored NFC-normalised, with spaces around it trimmed."
)

Name = Annotated[
    str,
    BeforeValidator(names.clean),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": names.MAX_LENGTH,
            "pattern": names.PATTERN,
            "description": NAME_DESCRIPTION,
        }
    ),
]
"""A person's name: checked as sent, stored normalised (:mod:`lendo_api.names`)."""


def encode_cursor(seq: int) -> str:
    """The opaque text of a listing position, as clients see it."""
    return base64.urlsafe_b64encode(str(seq).encode()).rstrip(b"=").decode()


# A cursor is the unpadded base64url text of a position's decimal digits (1 to 19 of
# them): three digits make four characters, a last one or two make two or three.
_THREE_DIGITS = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"
_ONE_DIGIT = "(?:[MN][AQgw]|O[AQ])"
_TWO_DIGITS = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk]"
CURSOR_PATTERN = (
    f"^(?:(?:{_THREE_DIGITS}){{1,6}}|(?:{_THREE_DIGITS}){{0,6}}{_ONE_DIGIT}"
    f"|(?:{_THREE_DIGITS}){{0,5}}{_TWO_DIGITS})$"
)
_CURSOR = re.compile(CURSOR_PATTERN)


def _decode_cursor(value: object) -> int:
    """The position a cursor names; one past the last position names the end.

    Every text of the cursor's form names a position, so that the document's
    pattern is the whole rule; a position beyond any there can be is the end.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _CURSOR.fullmatch(value):
        digits = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return min(int(digits), _MAX_SEQ)
    raise ValueError("is not a cursor of this API")


Cursor = Annotated[
    int,
    PlainValidator(_decode_cursor),
    PlainSerializer(encode_cursor, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CURSOR_PATTERN,
            "description": "Opaque position in a listing.",
        }
    ),
]
"""A position in a listing; an ``int`` in code, opaque text on the wire."""


class NewApplication(BaseModel):
    """The body of ``POST /api/applications``."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name
    last_name: Name


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
    decided_at: datetime | None = Field(
        default=None,
        description="When the bank's final word (completed, rejected, or the refusal that "
        "made it failed) was seen; null while pending.",
    )


EVENT_CURSOR_PATTERN = "^[0-9]{1,19}$"


def _decode_event_cursor(value: object) -> int:
    """The position in the event log a cursor names; beyond any there can be is the end."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(EVENT_CURSOR_PATTERN, value):
        return min(int(value), _MAX_SEQ)
    raise ValueError("is not an event cursor of this API: 1 to 19 decimal digits")


EventCursor = Annotated[
    int,
    PlainValidator(_decode_event_cursor),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": EVENT_CURSOR_PATTERN,
            "description": "A position in the event log: the `id:` of an event of the stream.",
        }
    ),
]
"""A position in the event log; an ``int`` in code, its decimal digits on the wire."""

EventType = Literal[
    "application.created",
    "application.completed",
    "application.rejected",
    "application.failed",
]


class Event(BaseModel):
    """One change of an application, as the event log keeps it: the same wherever it is read."""

    id: str = Field(
        pattern="^evt_[0-9a-f]{32}$",
        description="Unique to this event, the same on every delivery of it: deduplicate on it.",
    )
    type: EventType = Field(
        description="application.created when it is stored; then application.completed, "
        "application.rejected or application.failed when it reaches that status."
    )
    timestamp: datetime = Field(description="When the change was committed.")
    data: Application = Field(description="The application as it was right after the change.")


class EventList(BaseModel):
    """The events of one application, oldest first."""

    items: list[Event]


class EventsQuery(BaseModel):
    """The query of ``GET /api/events``; unknown parameters are refused as likely typos."""

    model_config = ConfigDict(extra="forbid")

    after: EventCursor | None = Field(
        default=None,
        description="Replay every event after this cursor first (as the Last-Event-ID header "
        "does, which wins when both are sent); without either, only new events are sent.",
    )
    application_id: UUID | None = Field(
        default=None, description="Only the events of this application."
    )
    follow: bool = Field(
        default=True,
        description="false: end the stream once every event already in the log (after the "
        "cursor) is sent, instead of waiting for new ones.",
    )


class EventsHeaders(BaseModel):
    """The headers of ``GET /api/events`` that change what it sends."""

    last_event_id: EventCursor | None = Field(
        default=None,
        alias="Last-Event-ID",
        description="The id of the last event received: the stream resumes after it. "
        "Browsers' EventSource sends it by itself when it reconnects.",
    )


WEBHOOK_ID_PATTERN = "^wh_[0-9a-f]{32}$"

_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"


def webhook_url_pattern(host: str) -> str:
    """The URLs a webhook may have, on hosts matching the regular expression ``host``.

    http(s), the host, an optional port, then a path of printable ASCII
    (no fragment): a URL that matches is stored exactly as sent.
    """
    return f'^https?://({host})(:{_PORT})?(/[!-"$-~]*)?$'


WEBHOOK_URL_PATTERN = webhook_url_pattern(
    r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]"
)
"""Any host name or IP literal; a server with an allow-list narrows it to those hosts."""


class NewWebhook(BaseModel):
    """The body of ``POST /api/webhooks``; other fields are refused as likely typos."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        pattern=WEBHOOK_URL_PATTERN,
        description="Where each event is POSTed: an http(s) URL on a public address "
        "(the server refuses loopback, private, link-local and metadata addresses).",
    )
    events: list[EventType] | None = Field(
        default=None,
        min_length=1,
        max_length=len(get_args(EventType)),
        description="The event types to receive; every type when absent.",
    )


class Webhook(BaseModel):
    """A registered webhook, as every read shows it: without its secret."""

    id: str = Field(pattern=WEBHOOK_ID_PATTERN)
    url: str
    events: list[EventType] = Field(description="The event types it receives.")
    created_at: datetime


class NewWebhookSecret(Webhook):
    """A webhook just registered, with the secret that signs its deliveries: shown only here."""

    secret: str = Field(
        pattern="^whsec_[A-Za-z0-9+/=]+$",
        description="The Standard Webhooks signing secret; keep it, it is never shown again.",
    )


class WebhookList(BaseModel):
    """The caller's webhooks, oldest first."""

    items: list[Webhook]


class RotatedSecret(BaseModel):
    """The answer of a secret rotation: the new secret, shown only here."""

    id: str = Field(pattern=WEBHOOK_ID_PATTERN)
    secret: str = Field(pattern="^whsec_[A-Za-z0-9+/=]+$")
    previous_secret_expires_at: datetime = Field(
        description="Until then, deliveries carry a signature by the previous secret too."
    )


class DeliveryAttempt(BaseModel):
    """One attempt to deliver an event to a webhook."""

    event_id: str = Field(description="The event sent: its `webhook-id` header.")
    event_type: EventType
    attempt: int = Field(ge=1, description="Which attempt of this event's delivery, from 1.")
    attempted_at: datetime
    status_code: int | None = Field(
        description="The receiver's answer; null if it gave none (see `error`)."
    )
    error: str | None = Field(
        description="Why there was no answer: a timeout, a refused connection, a refused "
        "address; null when the receiver answered."
    )
    duration_ms: float = Field(ge=0, description="From sending to the answer or the error.")
    delivery_state: Literal["pending", "delivered", "failed"] = Field(
        description="The delivery now: pending (attempted again at `next_attempt_at`), "
        "delivered (a 2xx answer), or failed (no 2xx after the last retry)."
    )
    next_attempt_at: datetime | None = Field(
        description="When the delivery is attempted again; null unless it is pending."
    )


class DeliveryAttemptList(BaseModel):
    """A webhook's newest delivery attempts, newest first (at most 100)."""

    items: list[DeliveryAttempt]


class WebhookPath(BaseModel):
    """The path parameters of ``/api/webhooks/{id}``."""

    id: str = Field(pattern=WEBHOOK_ID_PATTERN, description="The webhook's id.")


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
