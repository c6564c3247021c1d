"""Settings shared by every process, and the one way to load them."""

import sys
from typing import NoReturn, TypeVar

from pydantic import Field, PositiveFloat, RedisDsn, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lendo_streams.contract import StreamNames


class RedisSettings(BaseSettings):
    """Where the streams live. Every process that touches Redis extends this."""

    model_config = SettingsConfigDict(env_prefix="LENDO_", frozen=True, extra="ignore")

    redis_url: RedisDsn = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"),
        description="Redis holding the submission and update streams.",
    )
    stream_prefix: str = Field(
        default="lendo:",
        min_length=1,
        description="Prefix of every Redis key, so two systems can share one Redis.",
    )
    trim_interval: PositiveFloat = Field(
        default=10.0,
        description="How often a reader removes the entries its stream's groups have all "
        "acknowledged (docs/reliability.md), which bounds the stream's length.",
    )

    @property
    def streams(self) -> StreamNames:
        return StreamNames(self.stream_prefix)


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
