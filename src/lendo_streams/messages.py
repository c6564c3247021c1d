"""The messages on the streams, and how an entry carries one.

Every entry carries one field, ``data``, holding the message as JSON. One
field keeps the encoding trivial to evolve: the pydantic model is the schema,
and an entry that does not parse is a :class:`MalformedEntry`, never a crash.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, Self, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from redis.typing import EncodableT, FieldT

DATA_FIELD = b"data"

FinalStatus = Literal["completed", "rejected", "failed"]
"""completed and rejected are the bank's decisions; failed, that the bank kept refusing the
application itself as invalid (an integration fault, not a decision)."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SubmissionMessage(_Message):
    """An application to hand to the bank and follow until its final status."""

    id: UUID
    first_name: str
    last_name: str
    request_id: str | None = None


class UpdateMessage(_Message):
    """The final word on one application: the bank's decision, or why it never came."""

    id: UUID
    status: FinalStatus
    decided_at: datetime
    request_id: str | None = None
    failure_reason: str | None = None
    """Why the application failed (the bank's refusal); only, and always, with ``failed``."""

    @model_validator(mode="after")
    def _reason_with_failure_only(self) -> Self:
        if (self.status == "failed") != (self.failure_reason is not None):
            raise ValueError("failure_reason goes with status failed, and only with it")
        return self


class MalformedEntry(ValueError):
    """A stream entry that is not a valid message of the expected type."""


M = TypeVar("M", bound=_Message)


def encode(message: _Message) -> dict[FieldT, EncodableT]:
    """Render a message as the fields of a stream entry."""
    return {DATA_FIELD: message.model_dump_json().encode()}


def decode(model: type[M], fields: Mapping[bytes, bytes]) -> M:
    """Parse the fields of a stream entry; raise :class:`MalformedEntry` if invalid."""
    raw = fields.get(DATA_FIELD)
    if raw is None:
        raise MalformedEntry(f"entry has no {DATA_FIELD.decode()!r} field")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        problem = f"not a valid {model.__name__}: {error.error_count()} errors"
        raise MalformedEntry(problem) from error
