"""``lendo-bank-sim``: serve the bank simulator until SIGTERM or SIGINT.

Each flag may instead come from ``LENDO_SIM_<FLAG>``; a flag wins. A bad value
exits with status 2 and one line naming the flag or variable it came from.
"""

import argparse
import asyncio
import signal
import sys
from collections.abc import Collection, Sequence
from typing import NoReturn

import structlog
import uvloop
from pydantic import ValidationError

from lendo_banksim.logs import configure_logging
from lendo_banksim.server import running_bank_sim
from lendo_banksim.settings import SimSettings

PROGRAM = "lendo-bank-sim"


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    # uvloop: the same asyncio code, with a faster event loop and transports.
    uvloop.run(serve(settings))


def parse_settings(argv: Sequence[str] | None = None) -> SimSettings:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Contract-exact simulator of the bank partner API."
    )
    for name, field in SimSettings.model_fields.items():
        parser.add_argument(
            _flag(name),
            dest=name,
            default=argparse.SUPPRESS,
            help=f"{field.description or ''} [env {_env(name)}, default {field.default}]",
        )
    flags = vars(parser.parse_args(argv))
    try:
        return SimSettings(**flags)
    except ValidationError as error:
        _exit_invalid(error, given=flags.keys())


async def serve(settings: SimSettings) -> None:
    log = structlog.get_logger()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running_bank_sim(settings, host=settings.host, port=settings.port) as sim:
        log.info(
            "bank_sim_listening",
            url=sim.url,
            seed=sim.state.seed,
            min_delay=settings.min_delay,
            max_delay=settings.max_delay,
            **settings.faults.model_dump(),
        )
        await stop.wait()
    log.info("bank_sim_stopped", **sim.state.stats().model_dump())


def _exit_invalid(error: ValidationError, given: Collection[str]) -> NoReturn:
    problems = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            name = str(problem["loc"][0])
            source = _flag(name) if name in given else _env(name)
            message = f"{source}: {message} (got {problem['input']!r})"
        problems.append(message)
    print(f"{PROGRAM}: invalid configuration: {'; '.join(problems)}", file=sys.stderr)
    raise SystemExit(2)


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _env(field: str) -> str:
    return f"LENDO_SIM_{field.upper()}"
