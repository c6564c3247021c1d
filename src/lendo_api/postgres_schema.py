"""The applications table on PostgreSQL, each column declared once; the store's SQL derives from it.

The declaration follows :class:`~lendo_api.store.StoredApplication` field by
field, in its order, so that a row read as :data:`SELECT_COLUMNS` is the
dataclass's positional arguments; ``seq`` and ``claimed_until`` are the
table's own bookkeeping. The table itself is created by the migrations
(``lendo_api/migrations/postgresql/``), which a test holds to this declaration.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from lendo_api.store import StoredApplication
from lendo_api.webhooks.registrations import StoredWebhook

TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
"""``to_char``'s pattern for RFC 3339 in UTC with microseconds, as SQLite keeps timestamps."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of ``applications``, named as the field of ``StoredApplication`` it holds."""

    name: str
    sql_type: str
    """Its type, as the migrations create it; inserts cast their parameter arrays to it."""
    public: bool
    """A field of :class:`lendo_api.models.Application`, so written into the JSON."""

    def json_value(self, table: str) -> str:
        """The SQL of its value in the JSON of an application, from ``table``'s row."""
        if self.sql_type == "timestamptz":
            return f"to_char({table}.{self.name} AT TIME ZONE 'UTC', '{TIMESTAMP_FORMAT}')"
        return f"{table}.{self.name}"


COLUMNS: tuple[Column, ...] = (
    Column("id", "uuid", public=True),
    Column("first_name", "text", public=True),
    Column("last_name", "text", public=True),
    Column("status", "text", public=True),
    Column("request_id", "text", public=False),
    Column("created_at", "timestamptz", public=True),
    Column("updated_at", "timestamptz", public=True),
    Column("published_at", "timestamptz", public=False),
    Column("failure_reason", "text", public=True),
    Column("decided_at", "timestamptz", public=True),
    Column("owner", "text", public=False),
)

SELECT_COLUMNS = ", ".join(f"a.{column.name}" for column in COLUMNS)
"""Every column of ``applications AS a``, in :class:`StoredApplication`'s order."""

_PUBLIC_FIELDS = ", ".join(f"{c.json_value('a')} AS {c.name}" for c in COLUMNS if c.public)

JSON_FROM = f"applications AS a CROSS JOIN LATERAL (SELECT {_PUBLIC_FIELDS}) AS j"
"""``applications AS a`` beside ``j``, its public fields, for :data:`APPLICATION_JSON`."""

APPLICATION_JSON = "row_to_json(j)::text"
"""One application as compact JSON text, keys in the model's order, as SQLite writes it."""

_EVENT_TYPE = (
    "CASE a.status WHEN 'pending' THEN 'application.created' ELSE 'application.' || a.status END"
)

INSERT_EVENTS = (
    "INSERT INTO events (id, application_id, owner, type, body)"
    f" SELECT c.event_id, a.id, a.owner, t.type,"
    # Concatenated, so the text is compact and in the model's key order, as SQLite writes it.
    """ '{"id":' || to_json(c.event_id)::text || ',"type":' || to_json(t.type)::text"""
    """ || ',"timestamp":' || to_json(j.updated_at)::text || ',"data":' || row_to_json(j)::text"""
    " || '}'"
    " FROM unnest($1::uuid[], $2::text[]) AS c (application_id, event_id)"
    " JOIN applications AS a ON a.id = c.application_id"
    f" CROSS JOIN LATERAL (SELECT {_PUBLIC_FIELDS}) AS j"
    f" CROSS JOIN LATERAL (SELECT {_EVENT_TYPE} AS type) AS t"
    " ORDER BY a.seq"
)
"""The event of each application, as it is now; parameters: application ids, their event ids.

Run in the transaction that created it (``application.created``) or made it
final (``application.<status>``), which holds the insert-order lock; the
event's data is the application as a read shows it.
"""

_ARRAYS = ", ".join(f"${n}::{column.sql_type}[]" for n, column in enumerate(COLUMNS, 1))

INSERT_MANY = (
    f"INSERT INTO applications ({', '.join(c.name for c in COLUMNS)})"
    f" SELECT * FROM unnest({_ARRAYS})"
)
"""Insert a batch, one parameter array per inserted column (:func:`insert_parameters`)."""


def insert_parameters(applications: Sequence[StoredApplication]) -> list[list[object]]:
    """The parameter arrays of :data:`INSERT_MANY` for these applications."""
    return [[getattr(app, column.name) for app in applications] for column in COLUMNS]


def application(row: asyncpg.Record) -> StoredApplication:
    """The application of a row read as :data:`SELECT_COLUMNS`."""
    return StoredApplication(*row.values())


WEBHOOK_COLUMNS: tuple[Column, ...] = (
    Column("id", "text", public=False),
    Column("owner", "text", public=False),
    Column("url", "text", public=False),
    Column("events", "text[]", public=False),
    Column("secret", "text", public=False),
    Column("previous_secret", "text", public=False),
    Column("previous_secret_until", "timestamptz", public=False),
    Column("created_at", "timestamptz", public=False),
)
"""The columns of ``webhooks``, one per field of :class:`StoredWebhook`, in its order."""

WEBHOOK_NAMES = ", ".join(column.name for column in WEBHOOK_COLUMNS)

WEBHOOK_NAMES_OF_W = ", ".join(f"w.{column.name}" for column in WEBHOOK_COLUMNS)
"""The same columns of ``webhooks AS w``, for a join."""

INSERT_WEBHOOK = (
    f"INSERT INTO webhooks ({WEBHOOK_NAMES})"
    f" VALUES ({', '.join(f'${n}' for n in range(1, len(WEBHOOK_COLUMNS) + 1))})"
)


def webhook_parameters(webhook: StoredWebhook) -> list[object]:
    """The parameters of :data:`INSERT_WEBHOOK`, in :data:`WEBHOOK_NAMES` order."""
    return [getattr(webhook, column.name) for column in WEBHOOK_COLUMNS]


def webhook(row: asyncpg.Record | Sequence[object]) -> StoredWebhook:
    """The webhook of a row (or the part of one) read as :data:`WEBHOOK_NAMES`."""
    values: list[Any] = list(row)
    values[3] = tuple(values[3])
    return StoredWebhook(*values)
