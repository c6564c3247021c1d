"""One actor per pending application: submit, poll until final, record the result.

An actor is a single flat coroutine run as one ``asyncio.Task``; everything
it shares with the others (bank client, acker, bank gate, schedule) lives
once in :class:`Actors`. Between polls an actor costs its task, one frame,
its sleep and the raw stream entry: names are decoded only for the moment of
a submission, and only actors let through the gate build requests. That keeps
50,000 actors within a few hundred megabytes. An actor never acknowledges its
entry except together with the outcome, so cancelling it before it has one
hands the entry back to the group; an outcome already handed to the
:class:`~lendo_poller.acks.Acker` is written with its ack even so.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import structlog

from lendo_poller.acks import Acker
from lendo_poller.bank import (
    BankClient,
    BankUnavailable,
    InvalidApplication,
    JobNotFound,
    JobStatus,
    Submitted,
    UnknownJobStatus,
)
from lendo_poller.gate import Gate
from lendo_poller.retries import call_retrying
from lendo_poller.settings import PollerSettings
from lendo_runtime.logs import get_logger
from lendo_streams import Entry, SubmissionMessage, UpdateMessage, decode

Argument = TypeVar("Argument")
Answer = TypeVar("Answer")


class Actors:
    """What every actor shares; :meth:`follow` is the coroutine of one actor.

    ``on_done(entry_id, application_id)`` is called when an actor ends,
    however it ends (decided, failed, crashed or cancelled).
    """

    def __init__(
        self,
        bank: BankClient,
        acker: Acker,
        settings: PollerSettings,
        on_done: Callable[[bytes, UUID], None],
    ) -> None:
        self._bank = bank
        self._acker = acker
        self._first_poll_delay = settings.first_poll_delay
        self._poll_interval = settings.poll_interval
        self._backoff = settings.backoff
        self._invalid_attempts = settings.invalid_attempts
        # Actors queue here, before building a request: a waiting actor costs
        # a future, not a retry state and an HTTP request. The gate is as wide
        # as the connection pool, so a request never waits for a connection.
        self._gate = Gate(settings.bank_max_connections)
        self._on_done = on_done
        self._log = get_logger()

    async def follow(self, entry: Entry, application_id: UUID) -> None:
        """Carry the application of a valid submission entry to its recorded final status."""
        # Bound in this actor's task only: each of its log lines names the application
        # and the request that created it.
        request_id = decode(SubmissionMessage, entry.fields).request_id
        structlog.contextvars.bind_contextvars(
            application_id=str(application_id), request_id=request_id
        )
        try:
            while True:
                try:
                    submitted = await self._submit(entry)
                except InvalidApplication as error:
                    failed = UpdateMessage(
                        id=application_id,
                        status="failed",
                        failure_reason=str(error),
                        decided_at=datetime.now(UTC),
                        request_id=request_id,
                    )
                    await self._acker.finish(entry.id, failed)
                    return
                # The bank decides 5-20 s after a submission; polling earlier only costs
                # requests. An application it had already (the entry was redelivered) has
                # usually been decided: waiting again would only delay its recovery.
                loop = asyncio.get_running_loop()
                first = loop.time()
                if submitted == "accepted":
                    first += self._first_poll_delay
                schedule = PollSchedule(first, self._poll_interval)
                try:
                    while True:
                        await asyncio.sleep(schedule.wait(loop.time()))
                        status = await self._job_status(application_id)
                        if status != "pending":
                            break
                except JobNotFound:
                    # The bank restarted and forgot the application: submitting it
                    # again (same id) is the only way to get a decision.
                    self._log.debug("application_resubmitted")
                    continue
                update = UpdateMessage(
                    id=application_id,
                    status=status,
                    decided_at=datetime.now(UTC),
                    request_id=request_id,
                )
                await self._acker.finish(entry.id, update)
                return
        except UnknownJobStatus as error:
            # Left unacknowledged, like a failure below: polled again only on a later
            # delivery, and dead-lettered after max_deliveries, never polled for ever.
            self._log.warning("bank_job_status_unknown", status=error.status)
        except Exception:
            # Left unacknowledged: the entry goes idle and is claimed again, and
            # after max_deliveries attempts it ends in the dead letters.
            self._log.exception("actor_failed", entry_id=entry.id.decode())
        finally:
            self._on_done(entry.id, application_id)

    async def _submit(self, entry: Entry) -> Submitted:
        """Submit until the bank takes the application; raise the last of
        ``invalid_attempts`` :class:`InvalidApplication` refusals."""
        # A refusal is retried in case the body was damaged on the way; the backoff
        # is waited outside the gate, so refused actors hold no bank connection.
        return await call_retrying(
            lambda: self._submit_once(entry),
            retry_on=InvalidApplication,
            wait=self._backoff,
            attempts=self._invalid_attempts,
        )

    async def _submit_once(self, entry: Entry) -> Submitted:
        async with self._gate:
            message = decode(SubmissionMessage, entry.fields)
            return await self._call(self._bank.submit, message)

    async def _job_status(self, application_id: UUID) -> JobStatus:
        async with self._gate:
            return await self._call(self._bank.job_status, application_id)

    async def _call(
        self, request: Callable[[Argument], Awaitable[Answer]], argument: Argument
    ) -> Answer:
        """``request(argument)``, retried after every :class:`BankUnavailable`, without limit.

        The bank being unreachable only delays an application; the actor ends
        only by being cancelled, which hands its entry back. An actor keeps
        its place at the gate while it backs off, so a failing bank sees at
        most ``bank_max_connections`` actors retrying.
        """
        return await call_retrying(
            lambda: request(argument), retry_on=BankUnavailable, wait=self._backoff
        )


class PollSchedule:
    """Poll times on a fixed grid: ``first``, then every ``interval`` after it.

    Sleeping the interval after each answer would add every round trip (and
    every wait at the gate) to the next poll, so the polls would drift later
    and a decision's staleness grow beyond ``interval``. On the grid, a
    decision is seen at most one interval plus one round trip after it is
    made. A poll that comes back after the next time has passed is followed
    at once, but the times already past are not made up: at most one poll
    starts per interval, so a slow bank is never polled faster.
    """

    __slots__ = ("_interval", "_next")

    def __init__(self, first: float, interval: float) -> None:
        self._next = first
        self._interval = interval

    def wait(self, now: float) -> float:
        """How long to sleep from ``now`` until the next poll (0 if late); takes that time."""
        missed = max(0, math.floor((now - self._next) / self._interval))
        due = self._next + missed * self._interval
        self._next = due + self._interval
        return max(0.0, due - now)
