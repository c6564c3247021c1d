"""The real ``lendo-poller`` process: configuration errors, logs and SIGTERM."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from lendo_banksim.config import SimConfig
from lendo_banksim.server import running_bank_sim
from lendo_streams import POLLER_GROUP, StreamNames, SubmissionMessage, encode, ensure_group

POLLER = str(Path(sys.executable).with_name("lendo-poller"))
NAME = "Zebulon-Quixote"
"""An applicant's name that must never reach the logs."""


def poller_env(**values: str) -> dict[str, str]:
    """This environment without any LENDO_ variable, plus ``values`` as LENDO_ variables."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("LENDO_")}
    return clean | {f"LENDO_{key.upper()}": value for key, value in values.items()}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("max_in_flight", "0"),
        ("bank_url", "not a url"),
        ("log_level", "loud"),
        ("claim_interval", "100"),
        ("heartbeat_ttl", "2"),
    ],
)
def test_invalid_configuration_exits_2_with_one_line_naming_the_variable(
    variable: str, value: str
) -> None:
    result = subprocess.run(
        [POLLER], env=poller_env(**{variable: value}), capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"LENDO_{variable.upper()}" in line


async def test_sigterm_exits_0_and_leaves_unfinished_entries_pending(
    redis: Redis, redis_url: str, stream_prefix: str, streams: StreamNames
) -> None:
    async with running_bank_sim(SimConfig(min_delay=60, max_delay=60)) as sim:
        await ensure_group(redis, streams.applications, POLLER_GROUP)
        for _ in range(10):
            message = SubmissionMessage(id=uuid.uuid4(), first_name=NAME, last_name=NAME)
            await redis.xadd(streams.applications, encode(message))
        env = poller_env(
            redis_url=redis_url,
            stream_prefix=stream_prefix,
            bank_url=sim.url,
            consumer_name="poller-main",
            first_poll_delay="0.05",
            poll_interval="0.05",
            read_block="0.1",
            summary_interval="0.1",
            log_level="debug",
        )
        process = await asyncio.create_subprocess_exec(POLLER, env=env, stdout=PIPE, stderr=PIPE)
        async with asyncio.timeout(10):
            while True:
                if sim.state.stats().polls >= 20:  # every application submitted and polled
                    break
                await asyncio.sleep(0.05)

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            _, stderr = await process.communicate()

    assert process.returncode == 0
    rows: Any = await redis.xpending_range(streams.applications, POLLER_GROUP, "-", "+", 100)
    assert [row["consumer"] for row in rows] == [b"poller-main"] * 10
    assert await redis.xlen(streams.updates) == 0
    logs = [json.loads(line) for line in stderr.decode().splitlines()]
    events = {log["event"]: log for log in logs}
    assert events["poller_started"]["consumer"] == "poller-main"
    assert events["poller_started"]["bank_url"].startswith(sim.url)
    assert any(log["event"] == "poller_summary" and log["in_flight"] == 10 for log in logs)
    assert events["actors_handed_back"]["count"] == 10
    assert NAME not in stderr.decode()
