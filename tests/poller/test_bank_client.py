"""BankClient against the bank simulator over real HTTP: every answer of the contract.

Each answer maps to a typed result or to one of the client's errors;
nothing else escapes. One test uses aioresponses for the one failure the
simulator cannot produce: a body cut short mid-transfer; a bank spelling
statuses outside the contract is a small server of its own.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aioresponses import aioresponses

from lendo_banksim.server import RunningBankSim
from lendo_local.redis_server import free_port
from lendo_poller.bank import (
    SHOWN_STATUS_LENGTH,
    BankClient,
    BankUnavailable,
    InvalidApplication,
    JobNotFound,
    UnknownJobStatus,
)
from lendo_streams import FinalStatus, SubmissionMessage

CLIENT_TIMEOUT = 0.2

BankAnswering = Callable[[str], Awaitable[str]]


@pytest.fixture
async def bank(bank_sim: RunningBankSim) -> AsyncIterator[BankClient]:
    client = BankClient(
        bank_sim.url, timeout=CLIENT_TIMEOUT, connect_timeout=CLIENT_TIMEOUT, max_connections=4
    )
    yield client
    await client.close()


def application(app_id: uuid.UUID | None = None) -> SubmissionMessage:
    return SubmissionMessage(id=app_id or uuid.uuid4(), first_name="Åsa", last_name="Ñúñez")


def application_decided(sim: RunningBankSim, outcome: FinalStatus) -> SubmissionMessage:
    """A fresh application that the simulator will decide as ``outcome``."""
    while sim.state.decide(app_id := uuid.uuid4())[0] != outcome:
        pass
    return application(app_id)


async def test_a_new_application_is_accepted(bank: BankClient, bank_sim: RunningBankSim) -> None:
    message = application()

    assert await bank.submit(message) == "accepted"

    assert message.id in bank_sim.state.decisions()
    assert bank.stats.accepted == 1


async def test_resubmitting_an_application_the_bank_has_is_success(bank: BankClient) -> None:
    message = application()
    await bank.submit(message)

    assert await bank.submit(message) == "already_known"

    assert (bank.stats.accepted, bank.stats.already_known) == (1, 1)


async def test_a_payload_the_bank_refuses_is_an_invalid_application(
    bank: BankClient, bank_sim: RunningBankSim
) -> None:
    bank_sim.state.set_faults({"refuse_rate": 1})

    with pytest.raises(InvalidApplication, match=r"^the request payload is not valid\.$"):
        await bank.submit(application())

    assert bank.stats.invalid == 1


@pytest.mark.parametrize("outcome", ["completed", "rejected"])
async def test_a_job_is_pending_until_the_bank_decides(
    bank: BankClient, bank_sim: RunningBankSim, outcome: FinalStatus
) -> None:
    message = application_decided(bank_sim, outcome)
    await bank.submit(message)

    assert await bank.job_status(message.id) == "pending"
    await asyncio.sleep(0.25)
    assert await bank.job_status(message.id) == outcome


@pytest.mark.parametrize(
    ("spelled", "status"),
    [("Pending", "pending"), ("COMPLETED", "completed"), ("Rejected", "rejected")],
)
async def test_a_status_is_read_without_regard_to_case(
    bank_answering: BankAnswering, spelled: str, status: str
) -> None:
    url = await bank_answering(spelled)
    bank = BankClient(url, timeout=1, connect_timeout=1, max_connections=1)
    try:
        assert await bank.job_status(uuid.uuid4()) == status
    finally:
        await bank.close()


@pytest.mark.parametrize(
    "spelled", ["processing", "", "completed.", "x" * 1000], ids=["word", "empty", "dot", "long"]
)
async def test_an_unknown_status_is_an_error_naming_it_and_counted(
    bank_answering: BankAnswering, spelled: str
) -> None:
    url = await bank_answering(spelled)
    bank = BankClient(url, timeout=1, connect_timeout=1, max_connections=1)
    try:
        with pytest.raises(UnknownJobStatus) as raised:
            await bank.job_status(uuid.uuid4())
    finally:
        await bank.close()

    assert raised.value.status == spelled[:SHOWN_STATUS_LENGTH]
    assert (bank.stats.unknown_status, bank.stats.unavailable) == (1, 0)


async def test_an_unknown_application_has_no_job(bank: BankClient) -> None:
    with pytest.raises(JobNotFound):
        await bank.job_status(uuid.uuid4())


async def test_a_restarted_bank_has_forgotten_the_job(
    bank: BankClient, bank_sim: RunningBankSim
) -> None:
    message = application()
    await bank.submit(message)

    bank_sim.state.reset()

    with pytest.raises(JobNotFound):
        await bank.job_status(message.id)
    await bank.submit(message)
    assert await bank.job_status(message.id) == "pending"


@pytest.mark.parametrize(
    "faults",
    [
        {"fail_rate": 1.0},
        {"garbage_rate": 1.0},
        {"drop_rate": 1.0},
        {"slow_rate": 1.0, "slow_delay": CLIENT_TIMEOUT * 2},
    ],
    ids=["5xx", "garbage", "dropped", "slow"],
)
async def test_a_failing_bank_is_unavailable(
    bank: BankClient, bank_sim: RunningBankSim, faults: dict[str, float]
) -> None:
    known = application()
    await bank.submit(known)
    bank_sim.state.set_faults(faults)

    with pytest.raises(BankUnavailable):
        await bank.submit(application())
    with pytest.raises(BankUnavailable):
        await bank.job_status(known.id)

    assert bank.stats.unavailable == 2


async def test_every_request_is_timed_answered_or_failed(bank_sim: RunningBankSim) -> None:
    timed: list[tuple[str, float]] = []
    bank = BankClient(
        bank_sim.url,
        timeout=CLIENT_TIMEOUT,
        connect_timeout=CLIENT_TIMEOUT,
        max_connections=4,
        on_request=lambda method, seconds: timed.append((method, seconds)),
    )
    try:
        message = application()
        await bank.submit(message)
        await bank.job_status(message.id)
        bank_sim.state.set_faults({"slow_rate": 1.0, "slow_delay": CLIENT_TIMEOUT * 2})
        with pytest.raises(BankUnavailable):
            await bank.job_status(message.id)
    finally:
        await bank.close()

    assert [method for method, _ in timed] == ["POST", "GET", "GET"]
    assert all(seconds > 0 for _, seconds in timed)
    assert timed[-1][1] >= CLIENT_TIMEOUT / 2  # timed until the client gave up


async def test_a_refused_connection_is_unavailable() -> None:
    bank = BankClient(
        f"http://127.0.0.1:{free_port()}", timeout=1, connect_timeout=1, max_connections=1
    )
    try:
        with pytest.raises(BankUnavailable):
            await bank.job_status(uuid.uuid4())
    finally:
        await bank.close()


async def test_a_body_cut_short_is_unavailable() -> None:
    # aioresponses cannot build responses under aiohttp 3.14 (pnuckowski/aioresponses#289),
    # but it can raise what aiohttp raises for a body shorter than its Content-Length.
    base = "http://bank.invalid"
    message = application()
    bank = BankClient(base, timeout=1, connect_timeout=1, max_connections=1)
    try:
        with aioresponses() as mocked:
            mocked.get(
                f"{base}/api/jobs?application_id={message.id}",
                exception=aiohttp.ClientPayloadError("Response payload is not completed"),
            )
            with pytest.raises(BankUnavailable):
                await bank.job_status(message.id)
    finally:
        await bank.close()
