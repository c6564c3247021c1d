"""Configuration of ``lendo-poller``, from ``LENDO_*`` environment variables.

Every timing is a float in seconds so a test can run the whole schedule a
hundred times faster than production.
"""

import socket

from pydantic import (
    AnyHttpUrl,
    Field,
    PositiveFloat,
    PositiveInt,
    model_validator,
)
from tenacity import wait_random_exponential

from lendo_runtime.logs import LogLevel
from lendo_streams.settings import RedisSettings


class PollerSettings(RedisSettings):
    """Everything the poller needs; see docs/configuration.md for the defaults' reasoning."""

    bank_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8000"), description="Base URL of the bank partner."
    )
    consumer_name: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Stable consumer name in the group; a restarted poller with the same "
        "name resumes its own pending entries first.",
    )
    max_in_flight: PositiveInt = Field(
        default=50_000, description="Cap of concurrent actors; the poller stops reading when full."
    )
    read_batch: PositiveInt = Field(
        default=100,
        description="Entries read per XREADGROUP. A batch's actors start in one go, so a "
        "smaller batch keeps the event loop responsive while a backlog is taken on.",
    )
    read_block: PositiveFloat = Field(
        default=1.0, description="Longest wait of one XREADGROUP for new entries."
    )
    # Polls keep to a grid (PollSchedule): staleness at most one interval plus a round
    # trip, at about 1 + 7.5/interval polls an application. Why 6.1 s and 0.99 s meet
    # both targets: docs/performance.md, "Freshness measured in real time".
    first_poll_delay: PositiveFloat = Field(
        default=6.1,
        description="Wait after submission before the first poll of the job: the "
        "earliest decision (5 s), one poll interval and 0.11 s that the p99 allows.",
    )
    poll_interval: PositiveFloat = Field(
        default=0.99,
        description="Wait between polls while the job is pending: bounds staleness to "
        "about this long, at about 1 + 7.5/interval polls per application.",
    )
    retry_initial: PositiveFloat = Field(
        default=0.5, description="First backoff after a failed bank call."
    )
    retry_max: PositiveFloat = Field(default=30.0, description="Cap of the backoff.")
    bank_timeout: PositiveFloat = Field(
        default=5.0, description="Total timeout of one bank request."
    )
    bank_connect_timeout: PositiveFloat = Field(
        default=2.0, description="Timeout to open a connection to the bank."
    )
    bank_max_connections: PositiveInt = Field(
        default=200,
        description="Bank requests in flight at once, and connections (politeness cap); "
        "the other actors wait their turn.",
    )
    claim_idle: PositiveFloat = Field(
        default=60.0,
        description="An entry idle this long in another consumer's pending list is "
        "taken over (its consumer is presumed dead).",
    )
    claim_interval: PositiveFloat = Field(
        default=10.0,
        description="How often to look for abandoned entries and to "
        "refresh the idle time of our own.",
    )
    heartbeat_interval: PositiveFloat = Field(
        default=1.0,
        description="How often the poller refreshes its heartbeat key and looks for "
        "consumers whose heartbeat expired, to take over their entries.",
    )
    heartbeat_ttl: PositiveFloat = Field(
        default=5.0,
        description="Lifetime of the heartbeat key: a poller silent this long is presumed "
        "dead and its entries are taken over. At least 3 heartbeat intervals.",
    )
    invalid_attempts: PositiveInt = Field(
        default=3,
        description="Submissions of an application the bank refuses as invalid, with "
        "backoff, before it is recorded as failed with the bank's reason.",
    )
    max_deliveries: PositiveInt = Field(
        default=10, description="Deliveries of one entry before it goes to the dead-letter stream."
    )
    shutdown_grace: PositiveFloat = Field(
        default=5.0, description="Longest wait for actors to hand back their entries on SIGTERM."
    )
    redis_timeout: PositiveFloat = Field(
        default=5.0,
        description="Longest wait for a Redis reply beyond a blocking read's own wait, so a "
        "silently dead connection is noticed.",
    )
    summary_interval: PositiveFloat = Field(
        default=5.0, description="How often one summary line (counts only) is logged."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface of the health and metrics server; the image sets 0.0.0.0 "
        "so probes and scrapers outside the container reach it.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of /healthz, /readyz and /metrics. 0, the default, takes a free "
        "port and logs it, so several pollers run side by side on one machine; the image "
        "sets 9090.",
    )
    log_level: LogLevel = Field(default="INFO")

    @property
    def backoff(self) -> wait_random_exponential:
        """The wait after a failed bank or Redis call: exponential, capped, full jitter.

        Full jitter spreads thousands of actors that failed at the same moment over
        the whole window, so a recovering bank is not hit by all of them at once.
        """
        return wait_random_exponential(multiplier=self.retry_initial, max=self.retry_max)

    @model_validator(mode="after")
    def _claims_refresh_before_stealing(self) -> "PollerSettings":
        if self.claim_interval * 2 > self.claim_idle:
            raise ValueError(
                "LENDO_CLAIM_INTERVAL must be at most half of LENDO_CLAIM_IDLE, "
                "or healthy actors' entries would be taken over"
            )
        # A ratio, with a margin: 0.3 s is three times 0.1 s, though not in binary floats.
        if self.heartbeat_ttl / self.heartbeat_interval < 3 - 1e-9:
            raise ValueError(
                "LENDO_HEARTBEAT_TTL must be at least 3 times LENDO_HEARTBEAT_INTERVAL, "
                "or a live poller's heartbeat could expire between two refreshes"
            )
        if self.retry_initial > self.retry_max:
            raise ValueError("LENDO_RETRY_INITIAL must not exceed LENDO_RETRY_MAX")
        return self
