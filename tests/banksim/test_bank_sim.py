"""The bank simulator over real HTTP: the partner's contract, faults, control API and CLI."""

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lendo_banksim.config import SimConfig
from lendo_banksim.server import RunningBankSim, running_bank_sim

CLI = str(Path(sys.executable).with_name("lendo-bank-sim"))

INVALID_PAYLOAD = {"error": "the request payload is not valid."}
ALREADY_USED = {"error": "the application ID is already used"}
NOT_FOUND = {"error": "failed to get job, the application_id doesn't exist."}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def application(app_id: uuid.UUID | None = None) -> dict[str, str]:
    return {"id": str(app_id or uuid.uuid4()), "first_name": "Åsa", "last_name": "Ñúñez"}


async def submit(
    http: aiohttp.ClientSession, sim: RunningBankSim, body: dict[str, str]
) -> tuple[int, Any]:
    async with http.post(f"{sim.url}/api/applications", json=body) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def job(http: aiohttp.ClientSession, sim: RunningBankSim, app_id: object) -> tuple[int, Any]:
    url = f"{sim.url}/api/jobs"
    async with http.get(url, params={"application_id": str(app_id)}) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def control(http: aiohttp.ClientSession, sim: RunningBankSim, method: str, path: str) -> Any:
    async with http.request(method, f"{sim.url}/_sim/{path}") as response:
        assert response.status == 200
        return await response.json()


# --- the bank's contract ---


async def test_submission_is_echoed_back_as_pending(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    body = application()

    assert await submit(http, bank_sim, body) == (201, {**body, "status": "pending"})


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"",
        b'["a list"]',
        b'"a string"',
        b'{"first_name": "Ada", "last_name": "Lovelace"}',
        b'{"id": "6b3c4b2e-8a55-4f3e-9a3e-0d0f4c8a1f00", "last_name": "Lovelace"}',
        b'{"id": "6b3c4b2e-8a55-4f3e-9a3e-0d0f4c8a1f00", "first_name": "Ada"}',
        b'{"id": "6b3c4b2e-8a55-4f3e-9a3e-0d0f4c8a1f00", "first_name": 7, "last_name": "L"}',
        b'{"id": "6b3c4b2e-8a55-4f3e-9a3e-0d0f4c8a1f00", "first_name": "A", "last_name": null}',
        b'{"id": "not-a-uuid", "first_name": "Ada", "last_name": "Lovelace"}',
        b'{"id": 42, "first_name": "Ada", "last_name": "Lovelace"}',
    ],
)
async def test_invalid_submission_is_refused_and_registers_nothing(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim, payload: bytes
) -> None:
    async with http.post(f"{bank_sim.url}/api/applications", data=payload) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        assert await response.json() == INVALID_PAYLOAD
    assert bank_sim.state.stats().applications == 0


async def test_resubmitting_a_held_id_is_refused_as_already_used(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    body = application()
    await submit(http, bank_sim, body)

    assert await submit(http, bank_sim, body) == (400, ALREADY_USED)
    assert bank_sim.state.stats().duplicate_submissions == 1


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("", 400, "application_id is missing"),
        ("?application_id=", 400, "application_id is missing"),
        ("?application_id=42", 400, "application_id is not a valid uuid"),
        (f"?application_id={uuid.uuid4()}", 404, NOT_FOUND["error"]),
    ],
)
async def test_job_lookup_refusals(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim, query: str, status: int, error: str
) -> None:
    async with http.get(f"{bank_sim.url}/api/jobs{query}") as response:
        assert response.status == status
        assert response.content_type == "application/json"
        assert await response.json() == {"error": error}


async def test_job_is_pending_until_the_window_then_final_forever(
    http: aiohttp.ClientSession,
) -> None:
    app_id = uuid.uuid4()
    async with running_bank_sim(SimConfig(min_delay=0.3, max_delay=0.4)) as sim:
        await submit(http, sim, application(app_id))
        status, early = await job(http, sim, app_id)
        assert status == 200
        assert early["application_id"] == str(app_id)
        assert early["status"] == "pending"

        await asyncio.sleep(0.45)
        finals = [(await job(http, sim, app_id))[1] for _ in range(3)]
        decisions = await control(http, sim, "GET", "decisions")

    assert decisions[str(app_id)] in {"completed", "rejected"}
    assert finals == [{**early, "status": decisions[str(app_id)]}] * 3


async def test_every_decision_arrives_within_the_window(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    ids = [uuid.uuid4() for _ in range(20)]
    for app_id in ids:
        await submit(http, bank_sim, application(app_id))

    await asyncio.sleep(0.25)

    statuses = {(await job(http, bank_sim, app_id))[1]["status"] for app_id in ids}
    assert statuses <= {"completed", "rejected"}


async def test_same_seed_decides_the_same_and_another_seed_differently(
    http: aiohttp.ClientSession,
) -> None:
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"application-{n}") for n in range(16)]

    async def decide(seed: int) -> dict[str, str]:
        async with running_bank_sim(SimConfig(min_delay=0, max_delay=0, seed=seed)) as sim:
            for app_id in ids:
                await submit(http, sim, application(app_id))
            decided: dict[str, str] = await control(http, sim, "GET", "decisions")
            assert {(await job(http, sim, i))[1]["status"] for i in ids} == set(decided.values())
            return decided

    first, again, other = await decide(42), await decide(42), await decide(43)

    assert first == again
    assert set(first.values()) == {"completed", "rejected"}
    assert first != other


async def test_reset_forgets_jobs_like_a_restarted_bank(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    body = application()
    await submit(http, bank_sim, body)

    assert await control(http, bank_sim, "POST", "reset") == {"forgotten": 1}

    assert await job(http, bank_sim, body["id"]) == (404, NOT_FOUND)
    assert (await submit(http, bank_sim, body))[0] == 201
    assert (await job(http, bank_sim, body["id"]))[0] == 200
    assert body["id"] in await control(http, bank_sim, "GET", "decisions")
    assert bank_sim.state.stats().submissions == 2


async def test_stats_and_requests_per_application_count_bank_traffic(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    held, unknown = application(), str(uuid.uuid4())
    await submit(http, bank_sim, held)
    await submit(http, bank_sim, held)
    await job(http, bank_sim, held["id"])
    await job(http, bank_sim, unknown)

    stats = await control(http, bank_sim, "GET", "stats")
    per_application = await control(http, bank_sim, "GET", "requests_per_application")

    assert stats == {
        "seed": bank_sim.state.seed,
        "submissions": 1,
        "duplicate_submissions": 1,
        "polls": 2,
        "not_found": 1,
        "refused": 0,
        "applications": 1,
        "faults": {"fail": 0, "slow": 0, "drop": 0, "garbage": 0},
    }
    assert per_application == {held["id"]: 3, unknown: 1}


# --- fault injection ---


async def test_failure_answers_5xx_and_registers_nothing(http: aiohttp.ClientSession) -> None:
    async with running_bank_sim(SimConfig(fail_rate=1, seed=1)) as sim:
        for _ in range(6):
            async with http.post(f"{sim.url}/api/applications", json=application()) as response:
                assert response.status in {500, 502, 503}
        stats = sim.state.stats()

    assert stats.applications == 0
    assert stats.faults["fail"] == 6


async def test_slow_answer_exceeds_the_client_timeout(http: aiohttp.ClientSession) -> None:
    """The bank still does the work: a timed-out submission can be held, hence "already used"."""
    body = application()
    async with running_bank_sim(SimConfig(slow_rate=1, slow_delay=0.3)) as sim:
        with pytest.raises(TimeoutError):
            await http.post(
                f"{sim.url}/api/applications", json=body, timeout=aiohttp.ClientTimeout(total=0.1)
            )
        assert sim.state.stats().faults["slow"] == 1
        await asyncio.sleep(0.4)
        sim.state.set_faults({"slow_rate": 0})

        assert await submit(http, sim, body) == (400, ALREADY_USED)


async def test_dropped_connection_is_a_disconnect_and_registers_nothing(
    http: aiohttp.ClientSession,
) -> None:
    async with running_bank_sim(SimConfig(drop_rate=1)) as sim:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.post(f"{sim.url}/api/applications", json=application())
        stats = sim.state.stats()

    assert stats.applications == 0
    assert stats.faults["drop"] == 1


async def test_garbage_is_a_200_that_does_not_parse_and_registers_nothing(
    http: aiohttp.ClientSession,
) -> None:
    async with running_bank_sim(SimConfig(garbage_rate=1, seed=1)) as sim:
        for _ in range(6):
            async with http.post(f"{sim.url}/api/applications", json=application()) as response:
                assert response.status == 200
                with pytest.raises(ValueError, match=r"Expecting|Unterminated|Extra data"):
                    json.loads(await response.text())
        stats = sim.state.stats()

    assert stats.applications == 0
    assert stats.faults["garbage"] == 6


async def test_fault_rates_are_per_request_probabilities(http: aiohttp.ClientSession) -> None:
    async with running_bank_sim(SimConfig(fail_rate=0.3, seed=5)) as sim:
        statuses = []
        for _ in range(200):
            async with http.get(f"{sim.url}/api/jobs?application_id={uuid.uuid4()}") as response:
                statuses.append(response.status)

    assert 30 <= statuses.count(500) + statuses.count(502) + statuses.count(503) <= 90
    assert 110 <= statuses.count(404) <= 170


async def test_faults_change_at_runtime_and_spare_the_control_api(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    async with http.put(f"{bank_sim.url}/_sim/faults", json={"fail_rate": 1}) as response:
        assert response.status == 200
        assert (await response.json())["fail_rate"] == 1

    async with http.get(f"{bank_sim.url}/api/jobs") as response:
        assert response.status >= 500
    assert (await control(http, bank_sim, "GET", "faults"))["fail_rate"] == 1


async def test_refused_applications_are_refused_at_every_submission_and_listed(
    http: aiohttp.ClientSession,
) -> None:
    bodies = [application() for _ in range(40)]
    async with running_bank_sim(SimConfig(refuse_rate=0.5, seed=3)) as sim:
        first = [await submit(http, sim, body) for body in bodies]
        again = [await submit(http, sim, body) for body in bodies]
        lookups = [(await job(http, sim, body["id"]))[0] for body in bodies]
        listed = set(await control(http, sim, "GET", "refused"))
        stats = await control(http, sim, "GET", "stats")
        decided = await control(http, sim, "GET", "decisions")

    refused = {body["id"] for body, answer in zip(bodies, first, strict=True) if answer[0] == 400}
    assert 0 < len(refused) < len(bodies)
    assert listed == refused
    for body, answer, repeated, lookup in zip(bodies, first, again, lookups, strict=True):
        if body["id"] in refused:
            assert answer == repeated == (400, INVALID_PAYLOAD)
            assert lookup == 404  # registered nothing
        else:
            assert (answer[0], repeated) == (201, (400, ALREADY_USED))
            assert lookup == 200
    assert stats["refused"] == 2 * len(refused)
    assert stats["submissions"] == len(bodies) - len(refused)
    assert refused.isdisjoint(decided)


async def test_the_refuse_rate_changes_at_runtime(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim
) -> None:
    body = application()
    async with http.put(f"{bank_sim.url}/_sim/faults", json={"refuse_rate": 1}) as response:
        assert (await response.json())["refuse_rate"] == 1
    assert await submit(http, bank_sim, body) == (400, INVALID_PAYLOAD)

    async with http.put(f"{bank_sim.url}/_sim/faults", json={"refuse_rate": 0}) as response:
        assert response.status == 200
    assert (await submit(http, bank_sim, body))[0] == 201
    assert await control(http, bank_sim, "GET", "refused") == [body["id"]]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"fail_rate": 2}', "fail_rate"),
        (b'{"fail_rate": 0.6, "drop_rate": 0.6}', "must not exceed 1"),
        (b'{"typo_rate": 0.1}', "typo_rate"),
        (b"[]", "JSON object"),
        (b"{", "not JSON"),
    ],
)
async def test_invalid_fault_change_is_refused_and_keeps_the_rates(
    http: aiohttp.ClientSession, bank_sim: RunningBankSim, body: bytes, problem: str
) -> None:
    async with http.put(f"{bank_sim.url}/_sim/faults", data=body) as response:
        assert response.status == 400
        assert problem in (await response.json())["error"]
    assert bank_sim.state.faults.rates == SimConfig().faults


# --- the command line ---


def cli_env(**variables: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LENDO_SIM_")}
    return {**clean, **variables}


INVALID_VALUES = [
    (["--fail-rate", "1.5"], {}, "--fail-rate"),
    ([], {"LENDO_SIM_REFUSE_RATE": "-0.1"}, "LENDO_SIM_REFUSE_RATE"),
    (["--min-delay", "10", "--max-delay", "5"], {}, "--max-delay"),
    ([], {"LENDO_SIM_SLOW_DELAY": "-1"}, "LENDO_SIM_SLOW_DELAY"),
    (["--seed", "x"], {"LENDO_SIM_SEED": "1"}, "--seed"),
]


async def test_cli_rejects_an_invalid_value_in_one_line_naming_it() -> None:
    async def run(args: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            CLI, *args, env=cli_env(**env), stdout=PIPE, stderr=PIPE
        )
        async with asyncio.timeout(30):
            out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out, err

    # Concurrently: each run spends most of its time importing.
    results = await asyncio.gather(*(run(args, env) for args, env, _ in INVALID_VALUES))

    for (_, _, named), (code, out, err) in zip(INVALID_VALUES, results, strict=True):
        assert (code, out) == (2, b""), named
        [line] = err.decode().splitlines()
        assert line.startswith(f"lendo-bank-sim: invalid configuration: {named}: ")


async def test_cli_serves_until_sigterm_and_exits_0(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        CLI,
        "--port",
        "0",
        env=cli_env(LENDO_SIM_SEED="11", LENDO_SIM_PORT="not-a-port"),
        stderr=PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            started = json.loads(await process.stderr.readline())
        assert started["event"] == "bank_sim_listening"
        assert started["seed"] == 11

        async with http.post(f"{started['url']}/api/applications", json=application()) as response:
            assert response.status == 201
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            rest = await process.stderr.read()
            code = await process.wait()

    assert code == 0
    assert "Åsa" not in rest.decode()
    assert json.loads(rest.splitlines()[-1])["event"] == "bank_sim_stopped"


async def test_decision_times_fall_within_the_window_after_submission(
    http: aiohttp.ClientSession,
) -> None:
    app_id = uuid.uuid4()
    async with running_bank_sim(SimConfig(min_delay=30, max_delay=60)) as sim:
        submitted = time.time()
        await submit(http, sim, application(app_id))
        answered = time.time()
        times = await control(http, sim, "GET", "decision_times")

    assert list(times) == [str(app_id)]
    assert submitted + 30 <= times[str(app_id)] <= answered + 60
