"""Configuration of ``lendo-api``, from ``LENDO_*`` environment variables."""

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import NoDecode

from lendo_runtime.logs import LogLevel
from lendo_streams.settings import RedisSettings


def _comma_separated(value: object) -> object:
    """Split ``a, b`` into keys; an empty variable means no keys, so no authentication."""
    if isinstance(value, str):
        return tuple(key.strip() for key in value.split(",") if key.strip())
    return value


ApiKeySecrets = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_separated)]
"""Secret, so that printing the settings never prints a key."""


class ApiSettings(RedisSettings):
    """Everything the API needs; see docs/configuration.md."""

    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port of the HTTP server.")
    db_path: Path = Field(
        default=Path("lendo.sqlite3"), description="SQLite database file (created if missing)."
    )
    consumer_name: str = Field(
        default="api-1", min_length=1, description="Consumer name in the update group."
    )
    update_batch: PositiveInt = Field(default=500, description="Updates read per XREADGROUP.")
    update_block: PositiveFloat = Field(
        default=1.0, description="Longest wait of one XREADGROUP on the update stream."
    )
    reconcile_interval: PositiveFloat = Field(
        default=5.0, description="How often the outbox sweep runs."
    )
    reconcile_batch: PositiveInt = Field(
        default=500,
        description="Applications published per sweep; a full batch starts the next sweep "
        "at once, so a backlog drains without one huge Redis pipeline.",
    )
    republish_after: PositiveFloat = Field(
        default=120.0,
        description="A pending application with no progress for this long is published again.",
    )
    redis_check_interval: PositiveFloat = Field(
        default=1.0,
        description="How often the API looks whether Redis lost its data (its generation key "
        "is gone); on a loss every pending application is published again at once.",
    )
    publish_timeout: PositiveFloat = Field(
        default=1.0,
        description="Longest wait for Redis while creating an application; after it the "
        "request succeeds anyway and the reconciler publishes the application.",
    )
    redis_timeout: PositiveFloat = Field(
        default=5.0,
        description="Longest wait for Redis to connect or answer, on top of a blocking "
        "read's own wait, so a hung Redis is noticed instead of waited on forever.",
    )
    max_body_bytes: PositiveInt = Field(
        default=16 * 1024,
        description="Largest request body accepted, in bytes; a larger one is refused with 413. "
        "An application is two names of at most 100 characters, so 16 KiB is ample.",
    )
    idempotency_ttl: PositiveFloat = Field(
        default=24 * 3600.0,
        description="How long, in seconds, an Idempotency-Key is remembered; after it the "
        "same key creates a new application.",
    )
    api_keys: ApiKeySecrets = Field(
        default=(),
        description="Comma-separated API keys. When set, every /api/applications call needs "
        "'Authorization: Bearer <key>'; docs, the OpenAPI document and /healthz stay open.",
    )
    fault_crash_after_commit: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="For the chaos tests only: the probability that the process dies "
        "(exit 137) after committing an application and before publishing it.",
    )
    log_level: LogLevel = Field(default="INFO")
