"""Deliveries of events to webhooks, as the store hands them out and records their attempts."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from lendo_api.webhooks.registrations import StoredWebhook

DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """One event to send to one webhook, claimed by a dispatcher for one attempt."""

    id: int
    attempt: int
    """Which attempt this is, from 1."""
    claim: int
    """Which claim of the delivery this is: only the newest one's outcome counts."""
    event_id: str
    """The event's id: the ``webhook-id`` header, the same on every attempt."""
    body: str
    """The event as clients receive it, sent as it is."""
    webhook: StoredWebhook


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt did, and what becomes of its delivery."""

    delivery_id: int
    attempt: int
    claim: int
    """The claim it was made under (:attr:`DueDelivery.claim`)."""
    attempted_at: datetime
    duration: float
    """Seconds from sending to the answer (or to the error)."""
    status_code: int | None
    """The receiver's answer; ``None`` if there was none (``error`` says why)."""
    error: str | None
    state: DeliveryState
    """``pending`` while attempts remain, else ``delivered`` or ``failed``."""
    next_attempt_at: datetime | None
    """When a ``pending`` delivery is attempted again."""


@dataclass(frozen=True, slots=True)
class RecordedAttempt:
    """One attempt as ``GET /api/webhooks/{id}/deliveries`` lists it."""

    event_id: str
    event_type: str
    attempt: int
    attempted_at: datetime
    duration: float
    status_code: int | None
    error: str | None
    state: DeliveryState
    """Its delivery's state now."""
    next_attempt_at: datetime | None
    """When its delivery is attempted next, while it is pending."""


ATTEMPT_COLUMNS = (
    "e.id, e.type, a.attempt, a.attempted_at, a.duration_ms, a.status_code, a.error,"
    " d.state, d.due_at"
)
"""What both stores read of an attempt ``a``, its delivery ``d`` and its event ``e``."""


def recorded_attempt(row: Iterable[Any], moment: Callable[[Any], datetime]) -> RecordedAttempt:
    """The attempt of a row read as :data:`ATTEMPT_COLUMNS`; ``moment`` reads a stored time."""
    event_id, event_type, attempt, attempted_at, duration_ms, status_code, error, state, due = row
    return RecordedAttempt(
        event_id=event_id,
        event_type=event_type,
        attempt=attempt,
        attempted_at=moment(attempted_at),
        duration=duration_ms / 1000,
        status_code=status_code,
        error=error,
        state=state,
        next_attempt_at=moment(due) if state == "pending" else None,
    )


def outcome(
    delivery: DueDelivery,
    *,
    attempted_at: datetime,
    duration: float,
    status_code: int | None,
    error: str | None,
    retry_schedule: Sequence[float],
) -> AttemptOutcome:
    """The outcome of an attempt: a 2xx delivers; else the next retry, or failed after the last."""
    if status_code is not None and 200 <= status_code < 300:
        state: DeliveryState = "delivered"
        next_attempt_at = None
    elif delivery.attempt <= len(retry_schedule):
        state = "pending"
        next_attempt_at = attempted_at + timedelta(seconds=retry_schedule[delivery.attempt - 1])
    else:
        state = "failed"
        next_attempt_at = None
    return AttemptOutcome(
        delivery_id=delivery.id,
        attempt=delivery.attempt,
        claim=delivery.claim,
        attempted_at=attempted_at,
        duration=duration,
        status_code=status_code,
        error=error,
        state=state,
        next_attempt_at=next_attempt_at,
    )
