"""The API's domain errors; :mod:`lendo_api.problems` turns them into HTTP responses."""

from uuid import UUID

from lendo_api.models import FieldError


class ApplicationNotFound(LookupError):
    """No application has the requested id."""

    def __init__(self, application_id: UUID) -> None:
        super().__init__(f"no application has id {application_id}")
        self.application_id = application_id


class MalformedJson(ValueError):
    """The request body is not JSON at all."""


class InvalidInput(ValueError):
    """The request is well-formed but some of its fields are not acceptable."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))
        self.errors = errors


class IdempotencyKeyReused(ValueError):
    """An ``Idempotency-Key`` already used for a request with a different body."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used with a different body")
        self.key = key


class WebhookNotFound(LookupError):
    """The caller registered no webhook with the requested id."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook has id {webhook_id}")
        self.webhook_id = webhook_id
