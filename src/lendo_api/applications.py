"""What the API does with applications, whatever the transport."""

import asyncio
import uuid
from uuid import UUID

import structlog

from lendo_api.errors import ApplicationNotFound
from lendo_api.publisher import SubmissionPublisher
from lendo_api.store import ApplicationStore, Page, Status, StoredApplication

log = structlog.stdlib.get_logger(__name__)


class Applications:
    """Create, fetch and list applications.

    Creating follows the outbox rule: the row is committed first and is the
    source of truth. Publishing it is tried at once, but only for
    ``publish_timeout``; whatever fails here the reconciler publishes later,
    so a slow or absent Redis never fails a create.
    """

    def __init__(
        self, store: ApplicationStore, publisher: SubmissionPublisher, *, publish_timeout: float
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._publish_timeout = publish_timeout

    async def create(
        self, *, first_name: str, last_name: str, request_id: str
    ) -> StoredApplication:
        application = await self._store.create(
            id=uuid.uuid4(), first_name=first_name, last_name=last_name, request_id=request_id
        )
        log.info("application_created", application_id=str(application.id))
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._publisher.publish([application])
        except Exception as error:
            # Any failure (Redis down or slow, the published mark not written) is
            # repaired by the reconciler; the committed row is what counts.
            log.warning(
                "application_publish_deferred",
                application_id=str(application.id),
                error=str(error),
                error_type=type(error).__name__,
            )
        return application

    async def get(self, application_id: UUID) -> StoredApplication:
        application = await self._store.get(application_id)
        if application is None:
            raise ApplicationNotFound(application_id)
        return application

    async def list_page(self, *, status: Status | None, limit: int, after: int | None) -> Page:
        return await self._store.list_page(status=status, limit=limit, after=after)
