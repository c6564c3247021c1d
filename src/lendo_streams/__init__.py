"""The stream contract between ``lendo-api`` and ``lendo-poller``.

Stream and group names, the pydantic message models and the consumer-group
helpers live here, so both processes speak exactly the same language.
"""

from lendo_streams.contract import (
    API_GROUP,
    POLLER_GROUP,
    FinalStatus,
    MalformedEntry,
    StreamNames,
    SubmissionMessage,
    UpdateMessage,
    decode,
    encode,
)
from lendo_streams.groups import Entry, autoclaim, ensure_group, is_nogroup, read_group, touch

__all__ = [
    "API_GROUP",
    "POLLER_GROUP",
    "Entry",
    "FinalStatus",
    "MalformedEntry",
    "StreamNames",
    "SubmissionMessage",
    "UpdateMessage",
    "autoclaim",
    "decode",
    "encode",
    "ensure_group",
    "is_nogroup",
    "read_group",
    "touch",
]
