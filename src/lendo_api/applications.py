"""What the API does with applications, whatever the transport."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from lendo_api.crash_injection import maybe_crash
from lendo_api.errors import ApplicationNotFound, IdempotencyKeyReused
from lendo_api.publisher import SubmissionPublisher
from lendo_api.store import (
    ApplicationStore,
    IdempotencyKey,
    JsonPage,
    Status,
    StoredApplication,
)
from lendo_runtime.logs import get_logger

log = get_logger()


@dataclass(frozen=True, slots=True)
class Creation:
    """The outcome of a create: the application, and whether this request made it."""

    application: StoredApplication
    created: bool
    """False when an ``Idempotency-Key`` replay found the application of an earlier request."""


class Applications:
    """Create, fetch and list applications.

    Creating follows the outbox rule: the row is committed first and is the
    source of truth. Publishing it is tried at once, but only for
    ``publish_timeout``; whatever fails here the reconciler publishes later,
    so a slow or absent Redis never fails a create.

    With an idempotency key, a repeated request (a client retrying after a
    lost answer) gets the application of the first one instead of a second
    application, for ``keep_keys_for`` after the first.
    """

    def __init__(
        self,
        store: ApplicationStore,
        publisher: SubmissionPublisher,
        *,
        publish_timeout: float,
        keep_keys_for: timedelta,
        crash_after_commit: float = 0.0,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._publish_timeout = publish_timeout
        self._keep_keys_for = keep_keys_for
        self._crash_after_commit = crash_after_commit
        self.created = 0
        """Applications created since start (replays not counted), for metrics."""

    async def create(
        self,
        *,
        first_name: str,
        last_name: str,
        request_id: str,
        idempotency_key: str | None,
        client: str,
    ) -> Creation:
        """Create an application, or find the one an earlier request with this key created.

        Raises :class:`IdempotencyKeyReused` if the key came with different names.
        """
        if idempotency_key is None:
            application = await self._store.create(
                id=uuid.uuid4(),
                first_name=first_name,
                last_name=last_name,
                request_id=request_id,
                owner=client,
            )
        else:
            key = IdempotencyKey(client, idempotency_key, _body_hash(first_name, last_name))
            keyed = await self._store.create_once(
                key=key,
                id=uuid.uuid4(),
                first_name=first_name,
                last_name=last_name,
                request_id=request_id,
                keep_for=self._keep_keys_for,
            )
            if keyed.body_hash != key.body_hash:
                raise IdempotencyKeyReused(idempotency_key)
            application = keyed.application
            if not keyed.created:
                # Already published, or left to the reconciler, by the first request.
                log.info("application_replayed", application_id=str(application.id))
                return Creation(application, created=False)
        self.created += 1
        log.info("application_created", application_id=str(application.id))
        maybe_crash(self._crash_after_commit, "after_commit")
        await self._publish(application)
        return Creation(application, created=True)

    async def _publish(self, application: StoredApplication) -> None:
        try:
            await self._publisher.publish([application], give_up_after=self._publish_timeout)
        except Exception as error:
            # Any failure (Redis down or slow, the published mark not written) is
            # repaired by the reconciler; the committed row is what counts.
            log.warning(
                "application_publish_deferred",
                application_id=str(application.id),
                error=str(error),
                error_type=type(error).__name__,
            )

    async def get_json(self, application_id: UUID) -> str:
        """The application as the JSON of its public fields, as the API sends it."""
        application = await self._store.get_json(application_id)
        if application is None:
            raise ApplicationNotFound(application_id)
        return application

    async def events_json(self, application_id: UUID) -> list[str]:
        """The application's events, oldest first, each as the JSON the API sends."""
        events = await self._store.application_events_json(application_id)
        if events is None:
            raise ApplicationNotFound(application_id)
        return events

    async def list_page(self, *, status: Status | None, limit: int, after: int | None) -> JsonPage:
        return await self._store.list_page_json(status=status, limit=limit, after=after)


def _body_hash(first_name: str, last_name: str) -> str:
    """Hash of the normalised body: equal for requests that differ only in spacing or key order."""
    normalised = json.dumps([first_name, last_name], ensure_ascii=False).encode()
    return hashlib.sha256(normalised).hexdigest()
