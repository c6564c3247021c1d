"""The repository of applications: everything the API asks of its database.

The rest of the API depends on :class:`ApplicationStore` only. SQLite
(:mod:`lendo_api.sqlite_store`) serves one API process; PostgreSQL
(:mod:`lendo_api.postgres_store`) serves any number of them.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID, uuid4

from lendo_api.timestamps import now
from lendo_api.webhooks.deliveries import AttemptOutcome, DueDelivery, RecordedAttempt
from lendo_api.webhooks.registrations import StoredWebhook
from lendo_streams import FinalStatus

Status = Literal["pending", "completed", "rejected", "failed"]


@dataclass(frozen=True, slots=True)
class StoredApplication:
    """One application as the store keeps it, bookkeeping included."""

    id: UUID
    first_name: str
    last_name: str
    status: Status
    request_id: str | None
    """The request that created it, carried on every publish for tracing."""
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    """When the submission stream last accepted it; ``None`` until then."""
    failure_reason: str | None
    """Why it is ``failed`` (the bank's refusal); ``None`` in every other status."""
    decided_at: datetime | None
    """When the bank's final word was seen (by the poller); ``None`` while pending."""
    owner: str
    """The API client that created it (:data:`lendo_api.auth.CLIENT`); empty without API keys."""


def new_application(
    id: UUID, first_name: str, last_name: str, request_id: str | None, owner: str
) -> StoredApplication:
    """A pending, unpublished application, created when last updated."""
    created_at = now()
    return StoredApplication(
        id=id,
        first_name=first_name,
        last_name=last_name,
        status="pending",
        request_id=request_id,
        created_at=created_at,
        updated_at=created_at,
        published_at=None,
        failure_reason=None,
        decided_at=None,
        owner=owner,
    )


@dataclass(frozen=True, slots=True)
class JsonPage:
    """A page as the API sends it: each item already the JSON text of one application.

    Built by the database, so that a page costs no Python object per item.
    """

    items: list[str]
    """JSON objects with the fields of :class:`lendo_api.models.Application`, in creation order."""
    next_after: int | None
    """The ``seq`` to continue after; ``None`` on the last page."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The final status of one application: the bank's decision, or ``failed`` and why."""

    id: UUID
    status: FinalStatus
    decided_at: datetime
    """When the poller saw the bank's final word."""
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One entry of the event log, as the store keeps it."""

    cursor: int
    """Its position in the log: increasing in commit order, on every replica."""
    application_id: UUID
    owner: str
    """The API client whose application it is (empty without API keys)."""
    type: str
    json: str
    """The event as clients receive it (:class:`lendo_api.models.Event`), written once."""


def new_event_id() -> str:
    """A new event id: ``evt_`` and 32 hex digits, the same on every delivery of the event."""
    return f"evt_{uuid4().hex}"


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """What one batch of status changes did."""

    applied: int
    """Pending applications that became final."""
    unchanged: int
    """Changes for applications already final (duplicates or stale redeliveries)."""
    unknown: int
    """Changes for ids this store has never seen."""


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's promise that every request carrying this key is the same request."""

    scope: str
    """Who sent it, so that two API clients' keys never collide."""
    key: str
    body_hash: str
    """Hash of the normalised body, to tell a replay from a reuse; the names are not kept."""


@dataclass(frozen=True, slots=True)
class KeyedCreation:
    """What a create with an idempotency key did."""

    application: StoredApplication
    """The new application, or the one the key was first used for."""
    created: bool
    body_hash: str
    """The body hash the key was first used with; equal to the request's if ``created``."""


class ApplicationStore(Protocol):
    """Durable applications; each method is atomic, timestamps are the store's own UTC clock."""

    async def create(
        self,
        *,
        id: UUID,
        first_name: str,
        last_name: str,
        request_id: str | None,
        owner: str = "",
    ) -> StoredApplication:
        """Commit a new pending, unpublished application, with its ``application.created`` event."""
        ...

    async def create_once(
        self,
        *,
        key: IdempotencyKey,
        id: UUID,
        first_name: str,
        last_name: str,
        request_id: str | None,
        keep_for: timedelta,
    ) -> KeyedCreation:
        """Create as :meth:`create` unless ``key`` names an application of the last ``keep_for``.

        Atomic: of concurrent calls with one key, exactly one creates (and
        writes the event). A key older than ``keep_for`` counts as unused. The
        application's owner is the key's scope.
        """
        ...

    async def purge_idempotency_keys(self, *, older_than: timedelta) -> int:
        """Forget keys used more than ``older_than`` ago; return how many."""
        ...

    async def get_json(self, id: UUID) -> str | None:
        """The application with this id, as the JSON of its public fields, if any.

        Written as :meth:`list_page_json` writes each item, so one application
        reads the same alone and in a page.
        """
        ...

    async def list_page_json(
        self, *, status: Status | None, limit: int, after: int | None
    ) -> JsonPage:
        """Up to ``limit`` applications (of ``status``, if given) created after ``after``.

        Each as the JSON of its public fields, timestamps as
        :func:`lendo_api.timestamps.timestamp_text` writes them.
        """
        ...

    async def apply_updates(self, changes: Sequence[StatusChange]) -> UpdateOutcome:
        """Make pending applications final, in one transaction; final ones never change.

        Each application made final gets its event (``application.<status>``)
        in the same transaction; a change that changes nothing writes none.
        """
        ...

    async def application_events_json(self, id: UUID) -> list[str] | None:
        """This application's events as JSON, oldest first; ``None`` if it does not exist."""
        ...

    async def events_after(
        self, after: int, *, application_id: UUID | None, owner: str | None, limit: int
    ) -> list[StoredEvent]:
        """Up to ``limit`` events of the log after the cursor ``after``, in cursor order.

        Only those of ``application_id`` and of ``owner``, when given. Every
        event with a cursor up to the last one read had committed when it was
        read, so a reader that goes on from there skips none.
        """
        ...

    async def last_event_cursor(self) -> int:
        """The cursor of the newest event (0 while the log is empty)."""
        ...

    async def follow_event_commits(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` after any process commits decisions' events, until cancelled."""
        ...

    async def due_for_publish(
        self, *, older_than: timedelta, limit: int
    ) -> list[StoredApplication]:
        """Pending applications never published, or last published more than ``older_than`` ago.

        Never-published ones come first, then the longest unpublished. A store
        that several processes share leaves out those another one's sweep took
        and has not yet marked published, so that no two publish them at once.
        """
        ...

    async def mark_published(self, ids: Sequence[UUID]) -> None:
        """Record that the submission stream accepted these applications just now."""
        ...

    async def mark_unpublished(self, ids: Sequence[UUID]) -> None:
        """Forget that these pending applications were published: the next sweep publishes them."""
        ...

    async def requeue_failed(self, ids: Sequence[UUID] | None) -> list[UUID]:
        """Put failed applications (these, or every one if ``ids`` is None) back to pending.

        Each becomes unpublished, so the outbox hands it to the bank again;
        ids that are not failed are left as they are. Returns those requeued.
        """
        ...

    async def add_webhook(self, webhook: StoredWebhook) -> None:
        """Commit a new webhook."""
        ...

    async def webhooks_of(self, owner: str) -> list[StoredWebhook]:
        """The webhooks ``owner`` registered, oldest first."""
        ...

    async def webhook(self, id: str, owner: str) -> StoredWebhook | None:
        """The webhook with this id, if ``owner`` registered it."""
        ...

    async def delete_webhook(self, id: str, owner: str) -> bool:
        """Forget the webhook with this id and its deliveries, if ``owner`` registered it.

        Returns whether it did.
        """
        ...

    async def rotate_webhook_secret(
        self, id: str, owner: str, *, secret: str, previous_until: datetime
    ) -> StoredWebhook | None:
        """Make ``secret`` the webhook's; the one it replaces signs too until ``previous_until``.

        ``None`` if ``owner`` registered no webhook with this id.
        """
        ...

    async def claim_deliveries(
        self, *, limit: int, per_webhook: int, skip_webhooks: Sequence[str], claim_for: timedelta
    ) -> list[DueDelivery]:
        """Claim up to ``limit`` due deliveries, at most ``per_webhook`` of each webhook.

        None of the webhooks in ``skip_webhooks`` (those the caller has enough
        of in flight). Each claimed delivery gets a new claim and is due again
        only after ``claim_for``: no other dispatcher takes it meanwhile, and
        if the claimer dies it is attempted again once the claim lapses, as
        the same attempt (only a recorded attempt counts against the schedule).
        """
        ...

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Record these attempts and what becomes of their deliveries, in one transaction.

        Each counts as its delivery's newest attempt. An attempt whose claim
        lapsed (the delivery was claimed again since) is recorded but leaves
        the delivery to the newer claim; one of a delivery
        whose webhook is gone is not recorded.
        """
        ...

    async def purge_deliveries(self, *, older_than: timedelta) -> int:
        """Forget deliveries that finished (delivered or failed) more than ``older_than`` ago.

        Their attempts go with them; pending deliveries are kept however old.
        Returns how many deliveries.
        """
        ...

    async def webhook_attempts(
        self, id: str, owner: str, *, limit: int
    ) -> list[RecordedAttempt] | None:
        """The webhook's newest ``limit`` attempts, newest first; ``None`` unless ``owner``'s."""
        ...

    async def count_by_status(self) -> dict[Status, int]:
        """How many applications have each status (a status with none is absent)."""
        ...

    async def check(self) -> bool:
        """True if the database answers a query; for readiness."""
        ...

    async def close(self) -> None:
        """Finish writes in progress and release the database."""
        ...
