"""Configuration of ``lendo-api``, from ``LENDO_*`` environment variables."""

import os
import socket
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from lendo_runtime.logs import LogLevel
from lendo_streams.settings import RedisSettings


def _comma_separated(value: object) -> object:
    """Split ``a, b`` into keys; an empty variable means no keys, so no authentication."""
    if isinstance(value, str):
        return tuple(key.strip() for key in value.split(",") if key.strip())
    return value


def _empty_is_unset(value: object) -> object:
    """An empty variable is an unset one, so compose can pass ``${LENDO_DATABASE_URL:-}``."""
    return None if value == "" else value


DatabaseUrl = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset)]
"""Secret, as it may hold a password."""

HostList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]

RetrySchedule = Annotated[tuple[NonNegativeFloat, ...], NoDecode, BeforeValidator(_comma_separated)]

ApiKeySecrets = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_separated)]
"""Secret, so that printing the settings never prints a key."""


_POSTGRES_SCHEMES = ("postgresql", "postgres")


class ApiSettings(RedisSettings):
    """Everything the API needs; see docs/configuration.md."""

    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port of the HTTP server.")
    db_path: Path = Field(
        default=Path("lendo.sqlite3"), description="SQLite database file (created if missing)."
    )
    database_url: DatabaseUrl = Field(
        default=None,
        description="PostgreSQL database of the applications (postgresql://user:password@host/db); "
        "unset or empty, they are kept in the SQLite file LENDO_DB_PATH.",
    )
    api_workers: PositiveInt = Field(
        default=1,
        description="API processes to run on the one port (SO_REUSEPORT), each a replica of "
        "its own; more than 1 needs LENDO_DATABASE_URL.",
    )
    db_pool_min_size: PositiveInt = Field(
        default=2, description="PostgreSQL connections each API process keeps open."
    )
    db_pool_max_size: PositiveInt = Field(
        default=10, description="Most PostgreSQL connections one API process opens."
    )
    publish_claim: PositiveFloat = Field(
        default=30.0,
        description="On PostgreSQL, how long one replica's outbox sweep holds the applications "
        "it is publishing; another replica's sweep takes them only after it.",
    )
    consumer_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        description="Consumer name in the update group, one per API process; the default, "
        "host name and process id, is unique on any number of replicas.",
    )
    update_claim_idle: PositiveFloat = Field(
        default=30.0,
        description="An update left unacknowledged this long by another consumer of the "
        "group (a replica that died) is taken over; checked every half of it.",
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
    events_poll_interval: PositiveFloat = Field(
        default=0.1,
        description="How often each API process reads the event log for new events, which "
        "its event streams and webhooks then send: the longest an event waits when nothing "
        "tells of its commit (decisions are read at once: by the process that applied them, "
        "and on PostgreSQL by every replica).",
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
        default=128 * 1024,
        description="Largest request body accepted, in bytes; a larger one is refused with 413. "
        "A valid body is a few KiB at most; the margin lets an oversized field reach "
        "validation, whose 422 names it.",
    )
    idempotency_ttl: PositiveFloat = Field(
        default=24 * 3600.0,
        description="How long, in seconds, an Idempotency-Key is remembered; after it the "
        "same key creates a new application.",
    )
    api_keys: ApiKeySecrets = Field(
        default=(),
        description="Comma-separated API keys. When set, every /api/applications, /api/events and "
        "/api/webhooks call needs "
        "'Authorization: Bearer <key>'; docs, the OpenAPI document and /healthz stay open.",
    )
    webhook_allowed_hosts: HostList = Field(
        default=(),
        description="Comma-separated hosts webhooks may be registered for (exactly, as written "
        "in the URL); any other host is refused with 422, and the OpenAPI document's URL "
        "pattern names these hosts. Unset or empty: any public host.",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="true: webhooks may target loopback, private and link-local addresses "
        "(local runs and tests); otherwise those are refused with 422.",
    )
    webhook_retry_schedule: RetrySchedule = Field(
        default=(5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        description="Comma-separated seconds to wait before each retry of a webhook delivery "
        "that failed (no 2xx in time); after the last the delivery is marked failed. The "
        "default is the Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.",
    )
    webhook_timeout: PositiveFloat = Field(
        default=10.0,
        description="Longest wait for a webhook receiver's answer, connecting included; "
        "after it the attempt counts as failed.",
    )
    webhook_endpoint_concurrency: PositiveInt = Field(
        default=4,
        description="Deliveries one API process sends to one webhook at a time, so a slow "
        "receiver holds only its own deliveries back.",
    )
    webhook_concurrency: PositiveInt = Field(
        default=64, description="Deliveries one API process sends at a time, over all webhooks."
    )
    webhook_poll_interval: PositiveFloat = Field(
        default=0.5,
        description="How often each API process looks for deliveries due for a retry; a new "
        "event's deliveries start as soon as the process reads the event.",
    )
    webhook_claim: PositiveFloat = Field(
        default=60.0,
        description="How long a process that took a delivery holds it; if the process dies, "
        "another sends it after this. Above twice LENDO_WEBHOOK_TIMEOUT: a delivery may wait "
        "for one attempt of its webhook before its own.",
    )
    webhook_keep_deliveries: PositiveFloat = Field(
        default=7 * 24 * 3600.0,
        description="How long, in seconds, a delivered or failed webhook delivery and its "
        "attempts stay listed under /api/webhooks/{id}/deliveries; pending ones are kept.",
    )
    fault_crash_after_commit: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="For the chaos tests only: the probability that the process dies "
        "(exit 137) after committing an application and before publishing it.",
    )
    log_level: LogLevel = Field(default="INFO")

    @field_validator("database_url")
    @classmethod
    def _postgresql(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and urlsplit(url.get_secret_value()).scheme not in _POSTGRES_SCHEMES:
            raise ValueError("not a postgresql:// URL")
        return url

    @model_validator(mode="after")
    def _pool_bounds(self) -> "ApiSettings":
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("LENDO_DB_POOL_MIN_SIZE is above LENDO_DB_POOL_MAX_SIZE")
        return self

    @model_validator(mode="after")
    def _claim_outlasts_an_attempt(self) -> "ApiSettings":
        if self.webhook_claim <= 2 * self.webhook_timeout:
            raise ValueError("LENDO_WEBHOOK_CLAIM must be above twice LENDO_WEBHOOK_TIMEOUT")
        return self

    @model_validator(mode="after")
    def _one_process_per_sqlite_file(self) -> "ApiSettings":
        if self.api_workers > 1 and self.database_url is None:
            raise ValueError(
                "LENDO_API_WORKERS above 1 needs LENDO_DATABASE_URL: "
                "a SQLite file takes one API process"
            )
        return self
