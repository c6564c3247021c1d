"""The one way every process loads its settings: from the environment, or exit naming why."""

import sys
from typing import NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], program: str) -> S:
    """Read ``cls`` from the environment or exit with one line naming the bad variable."""
    try:
        return cls()
    except ValidationError as error:
        _exit_invalid(error, cls, program)


def _exit_invalid(error: ValidationError, cls: type[BaseSettings], program: str) -> NoReturn:
    prefix = str(cls.model_config.get("env_prefix", ""))
    problems = "; ".join(
        # A check across fields has no location; its message names the variables itself.
        f"{prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"]
        for e in error.errors()
    )
    print(f"{program}: invalid configuration: {problems}", file=sys.stderr)
    raise SystemExit(2)
