"""Where the streams live: the settings every process that reads or writes them extends."""

from pydantic import Field, PositiveFloat, PositiveInt, RedisDsn
from pydantic_settings import BaseSettings, SettingsConfigDict

from lendo_streams.names import StreamNames


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
    dead_letter_maxlen: PositiveInt = Field(
        default=100_000,
        description="About how many dead letters are kept: each write trims the "
        "dead-letter stream to roughly this many (XADD MAXLEN ~), the oldest first.",
    )

    @property
    def streams(self) -> StreamNames:
        return StreamNames(self.stream_prefix)
