"""The SQLite store's tables, and the one declaration its SQL and JSON derive from.

A field of :class:`~lendo_api.store.StoredApplication` is a column of
:data:`COLUMNS`: the SELECT list, both INSERTs, the row mapping and the JSON
projection the API serves are all built from it, so a new field is one line
here, and a migration in ``lendo_api/migrations/sqlite/`` (the table's history).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from lendo_api.store import StoredApplication
from lendo_api.timestamps import timestamp_text
from lendo_api.webhooks.registrations import StoredWebhook

# Timestamps are TEXT written by lendo_api.timestamps.timestamp_text: fixed width, so SQL
# compares them correctly as text.


def _same(value: Any) -> Any:
    return value


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def maybe(value: Any) -> Any:
        return None if value is None else convert(value)

    return maybe


@dataclass(frozen=True, slots=True)
class Column:
    """One column of ``applications``, holding the field of the same name."""

    name: str
    public: bool
    """Part of the application as clients see it (:class:`lendo_api.models.Application`)."""
    to_sql: Callable[[Any], Any] = _same
    from_sql: Callable[[Any], Any] = _same


COLUMNS: tuple[Column, ...] = (
    Column("id", public=True, to_sql=str, from_sql=UUID),
    Column("first_name", public=True),
    Column("last_name", public=True),
    Column("status", public=True),
    Column("request_id", public=False),
    Column("created_at", public=True, to_sql=timestamp_text, from_sql=_moment),
    Column("updated_at", public=True, to_sql=timestamp_text, from_sql=_moment),
    Column(
        "published_at",
        public=False,
        to_sql=_optional(timestamp_text),
        from_sql=_optional(_moment),
    ),
    Column("failure_reason", public=True),
    Column(
        "decided_at",
        public=True,
        to_sql=_optional(timestamp_text),
        from_sql=_optional(_moment),
    ),
    Column("owner", public=False),
)

NAMES = ", ".join(column.name for column in COLUMNS)
"""The SELECT list of a whole application, in :class:`StoredApplication`'s order."""


def application_json(table: str) -> str:
    """The SQL of the public fields of ``table``'s row as one JSON object, written by SQLite."""
    return "json_object({})".format(
        ", ".join(f"'{c.name}', {table}.{c.name}" for c in COLUMNS if c.public)
    )


APPLICATION_JSON = application_json("applications")
"""An application's public fields as one JSON object, written by SQLite."""

_EVENT_TYPE = (
    "CASE a.status WHEN 'pending' THEN 'application.created' ELSE 'application.' || a.status END"
)

INSERT_EVENTS = (
    "INSERT INTO events (id, application_id, owner, type, body)"
    f" SELECT c.value ->> 1, a.id, a.owner, {_EVENT_TYPE}, json_object("
    f"'id', c.value ->> 1, 'type', {_EVENT_TYPE}, 'timestamp', a.updated_at,"
    f" 'data', {application_json('a')})"
    " FROM json_each(?) AS c JOIN applications AS a ON a.id = c.value ->> 0"
    " ORDER BY a.seq"
)
"""The event of each application, as it is now, from one JSON array of ``[id, event id]``.

Run in the transaction that created it (``application.created``) or made it
final (``application.<status>``); the event's data is the application as a
read shows it.
"""

CREATED_EVENT_TRIGGER = (
    "CREATE TEMP TRIGGER application_created AFTER INSERT ON main.applications BEGIN"
    " INSERT INTO events (id, application_id, owner, type, body)"
    " SELECT e.id, NEW.id, NEW.owner, 'application.created', json_object("
    "'id', e.id, 'type', 'application.created', 'timestamp', NEW.updated_at,"
    f" 'data', {application_json('NEW')})"
    " FROM (SELECT 'evt_' || lower(hex(randomblob(16))) AS id) AS e; END"
)
"""Writes ``application.created`` in the statement that inserts the application.

A trigger of the writer's connection (TEMP: built at every open from
:data:`COLUMNS`, so it always writes the application as a read shows it), so a
batch of creates stays one statement: one thread hop and one implicit
transaction, its events included (docs/performance.md, "The event log").
"""

_PLACEHOLDERS = ", ".join("?" for _ in COLUMNS)
_FROM_JSON = ", ".join(f"value ->> {index}" for index in range(len(COLUMNS)))

INSERT = f"INSERT INTO applications ({NAMES}) VALUES ({_PLACEHOLDERS})"

INSERT_MANY = f"INSERT INTO applications ({NAMES}) SELECT {_FROM_JSON} FROM json_each(?)"
"""A whole batch in one statement: the rows arrive as one JSON array of :func:`to_row` tuples."""


def to_row(application: StoredApplication) -> tuple[Any, ...]:
    """The column values of ``application``, in :data:`NAMES` order."""
    return tuple(column.to_sql(getattr(application, column.name)) for column in COLUMNS)


def from_row(row: Sequence[Any]) -> StoredApplication:
    """The application a row of :data:`NAMES` holds."""
    return StoredApplication(
        *(column.from_sql(value) for column, value in zip(COLUMNS, row, strict=True))
    )


def _events_from_sql(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


WEBHOOK_COLUMNS: tuple[Column, ...] = (
    Column("id", public=False),
    Column("owner", public=False),
    Column("url", public=False),
    Column("events", public=False, to_sql=json.dumps, from_sql=_events_from_sql),
    Column("secret", public=False),
    Column("previous_secret", public=False),
    Column(
        "previous_secret_until",
        public=False,
        to_sql=_optional(timestamp_text),
        from_sql=_optional(_moment),
    ),
    Column("created_at", public=False, to_sql=timestamp_text, from_sql=_moment),
)
"""The columns of ``webhooks``, one per field of :class:`StoredWebhook`, in its order."""

WEBHOOK_NAMES = ", ".join(column.name for column in WEBHOOK_COLUMNS)

WEBHOOK_NAMES_OF_W = ", ".join(f"w.{column.name}" for column in WEBHOOK_COLUMNS)
"""The same columns of ``webhooks AS w``, for a join."""

INSERT_WEBHOOK = (
    f"INSERT INTO webhooks ({WEBHOOK_NAMES}) VALUES ({', '.join('?' for _ in WEBHOOK_COLUMNS)})"
)


def webhook_row(webhook: StoredWebhook) -> tuple[Any, ...]:
    """The column values of ``webhook``, in :data:`WEBHOOK_NAMES` order."""
    return tuple(column.to_sql(getattr(webhook, column.name)) for column in WEBHOOK_COLUMNS)


def webhook_from_row(row: Sequence[Any]) -> StoredWebhook:
    """The webhook a row of :data:`WEBHOOK_NAMES` holds."""
    return StoredWebhook(
        *(column.from_sql(value) for column, value in zip(WEBHOOK_COLUMNS, row, strict=True))
    )
