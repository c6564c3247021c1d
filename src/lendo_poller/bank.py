"""The bank partner's HTTP API, as typed calls with a closed set of errors.

Everything the network or the bank can do wrong that is worth trying again
becomes :class:`BankUnavailable`; the answers that change what the caller
does next are :class:`InvalidApplication`, :class:`JobNotFound` and
:class:`UnknownJobStatus`. No other exception leaves this module, so an
actor's error handling is complete by construction.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import aiohttp
import orjson
from pydantic import BaseModel, ValidationError
from yarl import URL

from lendo_poller.settings import PollerSettings
from lendo_streams import SubmissionMessage

JobStatus = Literal["pending", "completed", "rejected"]

Submitted = Literal["accepted", "already_known"]
"""How a submission succeeded: the bank took it now, or it had it already (a resubmission)."""

RequestTimed = Callable[[str, float], None]
"""``on_request(method, seconds)``: one bank request took ``seconds`` to its answer or failure."""

_JSON = {"Content-Type": "application/json"}

# The bank tells its two 400 answers apart only by their text. Matching a key
# phrase rather than the whole sentence survives punctuation changes in the
# real image, which would otherwise turn "already used" into a retry forever.
_ALREADY_USED = "already used"
_NOT_VALID = "not valid"

# The contract spells statuses in lower case; the case of the real image's answer is not relied on.
_JOB_STATUSES: dict[str, JobStatus] = {
    "pending": "pending",
    "completed": "completed",
    "rejected": "rejected",
}

SHOWN_STATUS_LENGTH = 64
"""The most of an unknown status kept for logs: the bank's answer is not ours to trust."""


class BankError(Exception):
    """Base of every error :class:`BankClient` raises."""


class BankUnavailable(BankError):
    """Transient: no usable answer (network, timeout, 5xx, garbage). Try again later."""


class InvalidApplication(BankError):
    """Permanent: the bank says the payload is not valid. Retrying cannot help."""


class JobNotFound(BankError):
    """The bank does not know the application (it restarted): submit it again."""


class UnknownJobStatus(BankError):
    """The bank answered a job status outside its contract: a fault to look into.

    ``status`` is the bank's value, cut to :data:`SHOWN_STATUS_LENGTH` characters.
    """

    def __init__(self, status: str) -> None:
        self.status = status[:SHOWN_STATUS_LENGTH]
        super().__init__(f"unknown job status {self.status!r}")


@dataclass(slots=True)
class BankStats:
    """Bank requests counted by outcome, for summaries and metrics."""

    accepted: int = 0
    already_known: int = 0
    invalid: int = 0
    pending: int = 0
    decided: int = 0
    not_found: int = 0
    unknown_status: int = 0
    unavailable: int = 0


class _ErrorBody(BaseModel):
    error: str


class _Application(BaseModel):
    id: UUID


class _Job(BaseModel):
    application_id: UUID
    status: str


class BankClient:
    """Submit applications and read their jobs over one ``aiohttp.ClientSession``.

    Create it inside a running event loop and :meth:`close` it when done.
    The timeouts include any wait for one of the ``max_connections``
    connections, so callers should not run more requests than that at once.
    ``on_request`` is told the method and duration of every request, answered
    or failed; the client times them itself because an aiohttp trace costs
    several awaited signals per request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        on_request: RequestTimed | None = None,
    ) -> None:
        base = URL(base_url.rstrip("/"))
        self._applications_url = base / "api" / "applications"
        self._jobs_url = base / "api" / "jobs"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout, connect=connect_timeout),
            connector=aiohttp.TCPConnector(limit=max_connections),
        )
        self._on_request = on_request
        self.stats = BankStats()

    @classmethod
    def from_settings(
        cls, settings: PollerSettings, on_request: RequestTimed | None = None
    ) -> "BankClient":
        return cls(
            str(settings.bank_url),
            timeout=settings.bank_timeout,
            connect_timeout=settings.bank_connect_timeout,
            max_connections=settings.bank_max_connections,
            on_request=on_request,
        )

    async def close(self) -> None:
        await self._session.close()

    async def submit(self, message: SubmissionMessage) -> Submitted:
        """Hand an application to the bank; a resubmission the bank already has is success.

        Returns ``"already_known"`` for an application the bank had before this
        call, whose assessment may be over already. Raises
        :class:`InvalidApplication` or :class:`BankUnavailable`.
        """
        payload = {
            "id": message.id,
            "first_name": message.first_name,
            "last_name": message.last_name,
        }
        status, body = await self._request("POST", self._applications_url, orjson.dumps(payload))
        if status == 201 and self._accepted(body, message.id):
            self.stats.accepted += 1
            return "accepted"
        if status == 400:
            error = self._error_of(body)
            if _ALREADY_USED in error:
                self.stats.already_known += 1
                return "already_known"
            if _NOT_VALID in error:
                self.stats.invalid += 1
                raise InvalidApplication(error)
        raise self._unavailable(f"unexpected answer {status} to a submission")

    async def job_status(self, application_id: UUID) -> JobStatus:
        """The status of the job assessing ``application_id``.

        Raises :class:`JobNotFound`, :class:`UnknownJobStatus` or :class:`BankUnavailable`.
        """
        # A query set on the parsed base URL: cheaper than aiohttp merging ``params``
        # into it, or parsing a whole URL string, for every request.
        url = self._jobs_url.with_query(application_id=str(application_id))
        status, body = await self._request("GET", url)
        if status == 404:
            self.stats.not_found += 1
            raise JobNotFound(str(application_id))
        if status == 200:
            try:
                job = _Job.model_validate_json(body)
            except ValidationError:
                raise self._unavailable("job answer is not a job") from None
            if job.application_id == application_id:
                known = _JOB_STATUSES.get(job.status.lower())
                if known is None:
                    self.stats.unknown_status += 1
                    raise UnknownJobStatus(job.status)
                if known == "pending":
                    self.stats.pending += 1
                else:
                    self.stats.decided += 1
                return known
        raise self._unavailable(f"unexpected answer {status} to a job query")

    async def _request(
        self, method: str, url: URL, json_body: bytes | None = None
    ) -> tuple[int, bytes]:
        headers = _JSON if json_body is not None else None
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, url, data=json_body, headers=headers
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._unavailable(f"{type(error).__name__}: {error}") from None
        finally:
            if self._on_request is not None:
                self._on_request(method, time.perf_counter() - started)

    def _unavailable(self, reason: str) -> BankUnavailable:
        self.stats.unavailable += 1
        return BankUnavailable(reason)

    @staticmethod
    def _accepted(body: bytes, application_id: UUID) -> bool:
        try:
            return _Application.model_validate_json(body).id == application_id
        except ValidationError:
            return False

    @staticmethod
    def _error_of(body: bytes) -> str:
        try:
            return _ErrorBody.model_validate_json(body).error
        except ValidationError:
            return ""
