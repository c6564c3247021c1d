"""The simulated bank's memory: the applications it holds and how each is decided.

Sized for 50,000+ pending applications: one small slotted record per
application and no task or timer; a job's status is worked out on each poll
from the monotonic clock and the decision time fixed at submission. Names are
never stored, since the bank only echoes them in its 201 answer.

Outcome, delay and whether the application is refused as invalid all follow
from ``sha256(seed:id)``, so a simulator restarted with the same seed decides
every application the same way.
"""

import hashlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict

from lendo_banksim.bodies import FinalStatus, JobOut, JobStatus
from lendo_banksim.config import Faults, SimConfig
from lendo_banksim.errors import ApplicationIdUsed, InvalidPayload, UnknownApplication
from lendo_banksim.faults import FaultInjector, FaultKind


@dataclass(frozen=True, slots=True)
class Job:
    """The bank's assessment of one application."""

    id: UUID
    decide_at: float
    """``time.monotonic()`` from which the outcome is visible."""
    outcome: FinalStatus

    def status(self, now: float) -> JobStatus:
        return self.outcome if now >= self.decide_at else "pending"


class SimStats(BaseModel):
    """Counters since the simulator started; ``reset`` does not clear them."""

    model_config = ConfigDict(frozen=True)

    seed: int
    submissions: int
    """Applications accepted (201), including resubmissions after a reset."""
    duplicate_submissions: int
    """Submissions refused as "already used": the client sent an id the bank held."""
    polls: int
    """Job lookups of a well-formed id, found or not."""
    not_found: int
    """Job lookups answered 404."""
    refused: int
    """Submissions refused as invalid because of ``refuse_rate``."""
    applications: int
    """Applications the bank holds now."""
    faults: dict[FaultKind, int]


class BankState:
    """The in-memory bank partner: submissions, job lookups, restarts and faults."""

    def __init__(self, config: SimConfig) -> None:
        self.seed = config.seed if config.seed is not None else secrets.randbits(32)
        self.faults = FaultInjector(config.faults, random.Random(self.seed))
        self._min_delay = config.min_delay
        self._window = config.max_delay - config.min_delay
        self._jobs: dict[UUID, Job] = {}
        self._decisions: dict[UUID, FinalStatus] = {}
        self._requests: Counter[UUID] = Counter()
        self._refused: set[UUID] = set()
        self._refusals = 0
        self._submissions = 0
        self._duplicates = 0
        self._polls = 0
        self._not_found = 0

    def decide(self, application_id: UUID) -> tuple[FinalStatus, float]:
        """The outcome of an application and its delay in seconds, fixed by the seed."""
        digest = self._digest(application_id)
        outcome: FinalStatus = "completed" if digest[0] % 2 == 0 else "rejected"
        fraction = int.from_bytes(digest[1:9]) / 2**64
        return outcome, self._min_delay + fraction * self._window

    def refuses(self, application_id: UUID) -> bool:
        """Whether the bank refuses this application as invalid at the current ``refuse_rate``."""
        fraction = int.from_bytes(self._digest(application_id)[9:17]) / 2**64
        return fraction < self.faults.rates.refuse_rate

    def submit(self, application_id: UUID) -> None:
        """Start assessing an application.

        Raise :class:`ApplicationIdUsed` if held already, :class:`InvalidPayload`
        (registering nothing) if the bank refuses it.
        """
        self._requests[application_id] += 1
        if application_id in self._jobs:
            self._duplicates += 1
            raise ApplicationIdUsed
        if self.refuses(application_id):
            self._refused.add(application_id)
            self._refusals += 1
            raise InvalidPayload
        outcome, delay = self.decide(application_id)
        self._jobs[application_id] = Job(uuid4(), time.monotonic() + delay, outcome)
        self._decisions[application_id] = outcome
        self._submissions += 1

    def job(self, application_id: UUID) -> JobOut:
        """The job of an application as of now; raise :class:`UnknownApplication` if not held."""
        self._requests[application_id] += 1
        self._polls += 1
        job = self._jobs.get(application_id)
        if job is None:
            self._not_found += 1
            raise UnknownApplication
        return JobOut(id=job.id, application_id=application_id, status=job.status(time.monotonic()))

    def reset(self) -> int:
        """Forget every application and job, as a restarted bank does; return how many."""
        forgotten = len(self._jobs)
        self._jobs = {}
        return forgotten

    def set_faults(self, changes: Mapping[str, object]) -> Faults:
        """Change some fault rates from now on; raise ``ValidationError`` if invalid."""
        return self.faults.change(changes)

    def refused(self) -> set[UUID]:
        """Every application refused as invalid at least once, held or not."""
        return set(self._refused)

    def decisions(self) -> dict[UUID, FinalStatus]:
        """The outcome of every application ever submitted, decided yet or not."""
        return dict(self._decisions)

    def decision_times(self) -> dict[UUID, float]:
        """When each held application is (or will be) decided, as a ``time.time()`` timestamp.

        For measuring how soon after the bank's decision a client learns it.
        """
        offset = time.time() - time.monotonic()
        return {app_id: job.decide_at + offset for app_id, job in self._jobs.items()}

    def requests_per_application(self) -> dict[UUID, int]:
        """Bank requests served per application id: submissions and polls, refused or not.

        A dropped, failed or garbled request never reaches the bank: it counts under
        ``faults`` only. A slow one is served late, so it counts here too.
        """
        return dict(self._requests)

    def _digest(self, application_id: UUID) -> bytes:
        return hashlib.sha256(f"{self.seed}:{application_id}".encode()).digest()

    def stats(self) -> SimStats:
        return SimStats(
            seed=self.seed,
            submissions=self._submissions,
            duplicate_submissions=self._duplicates,
            polls=self._polls,
            not_found=self._not_found,
            refused=self._refusals,
            applications=len(self._jobs),
            faults=dict(self.faults.counts),
        )
