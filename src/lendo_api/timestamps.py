"""The one text form of a moment, shared by the store and the responses."""

from datetime import UTC, datetime


def timestamp_text(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, always the same width: ``2025-03-14T09:26:53.000000Z``.

    Fixed width, so that SQL compares stored timestamps correctly as text, and
    one application reads the same in a page (written by the store) and alone.
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def now() -> datetime:
    """The current moment in UTC."""
    return datetime.now(UTC)
