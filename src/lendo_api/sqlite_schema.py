"""The SQLite store's tables, and the one declaration its SQL and JSON derive from.

A field of :class:`~lendo_api.store.StoredApplication` is a column of
:data:`COLUMNS`: the SELECT list, both INSERTs, the row mapping and the JSON
projection the API serves are all built from it, so a new field is one line
here, and a migration in ``lendo_api/migrations/sqlite/`` (the table's history).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from lendo_api.store import StoredApplication
from lendo_api.timestamps import timestamp_text

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
)

NAMES = ", ".join(column.name for column in COLUMNS)
"""The SELECT list of a whole application, in :class:`StoredApplication`'s order."""

APPLICATION_JSON = "json_object({})".format(
    ", ".join(f"'{column.name}', {column.name}" for column in COLUMNS if column.public)
)
"""An application's public fields as one JSON object, written by SQLite."""

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
