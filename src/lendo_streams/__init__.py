"""The stream contract between ``lendo-api`` and ``lendo-poller``.

Stream and group names, the pydantic message models, the consumer-group
helpers, trimming and dead letters live here, so both processes speak
exactly the same language.
"""

from lendo_streams.groups import Entry, autoclaim, ensure_group, read_group, touch
from lendo_streams.messages import (
    FinalStatus,
    MalformedEntry,
    SubmissionMessage,
    UpdateMessage,
    decode,
    encode,
)
from lendo_streams.names import API_GROUP, POLLER_GROUP, StreamNames

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
    "read_group",
    "touch",
]
