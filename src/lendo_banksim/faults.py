"""Fault injection: which requests the simulated bank mistreats, and how.

A fault is drawn before the request is looked at, so a faulted request never
reaches the bank's state: a dropped, failed or garbled submission registers
nothing. The one exception is latency: a slow request is served normally once
its delay is over, exactly like a slow real bank, so the client may time out on
a submission that the bank nevertheless accepted.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from lendo_banksim.config import Faults

FaultKind = Literal["fail", "slow", "drop", "garbage"]


@dataclass(frozen=True, slots=True)
class CannedAnswer:
    """A whole HTTP answer that is not the bank's."""

    status: int
    content_type: str
    body: bytes

    def response(self) -> web.Response:
        return web.Response(status=self.status, content_type=self.content_type, body=self.body)


FAILURES = (
    CannedAnswer(500, "application/json", b'{"error": "internal server error"}'),
    CannedAnswer(
        502,
        "text/html",
        b"<html><head><title>502 Bad Gateway</title></head>"
        b"<body><h1>502 Bad Gateway</h1></body></html>",
    ),
    CannedAnswer(503, "text/plain", b"upstream connect error or disconnect/reset before headers"),
)
"""What a failing bank or the proxy in front of it answers: JSON or not."""

GARBAGE = (
    CannedAnswer(
        200,
        "application/json",
        b'{"id": "0b8c7f4e-2a6d-4d1e-9c55-3f0a1e7b2d64", "application_id": "0b8c7f4e-2a6d-4d',
    ),
    CannedAnswer(200, "text/html", b"<!DOCTYPE html><html><body>Please wait...</body></html>"),
)
"""A 200 that cannot be parsed: JSON cut short, or an HTML page."""


@dataclass(frozen=True, slots=True)
class FaultDraw:
    """The faults one request suffers: first ``delay``, then a drop or a canned answer."""

    delay: float = 0.0
    drop: bool = False
    answer: CannedAnswer | None = None


NO_FAULT = FaultDraw()
"""The draw of a request served as it is: one shared instance, so callers test it by identity."""


class FaultInjector:
    """Draws the faults of each request from the current rates, and counts them."""

    def __init__(self, rates: Faults, rng: random.Random) -> None:
        self._rates = rates
        self._rng = rng
        self.counts: dict[FaultKind, int] = {"fail": 0, "slow": 0, "drop": 0, "garbage": 0}

    @property
    def rates(self) -> Faults:
        return self._rates

    def change(self, changes: Mapping[str, object]) -> Faults:
        """Replace some rates; raise pydantic's ``ValidationError`` and keep the old ones if bad."""
        self._rates = Faults.model_validate({**self._rates.model_dump(), **changes})
        return self._rates

    def draw(self) -> FaultDraw:
        rates = self._rates
        delay = 0.0
        if self._rng.random() < rates.slow_rate:
            self.counts["slow"] += 1
            delay = rates.slow_delay
        roll = self._rng.random()
        if roll < rates.drop_rate:
            self.counts["drop"] += 1
            return FaultDraw(delay, drop=True)
        roll -= rates.drop_rate
        if roll < rates.fail_rate:
            self.counts["fail"] += 1
            return FaultDraw(delay, answer=self._rng.choice(FAILURES))
        roll -= rates.fail_rate
        if roll < rates.garbage_rate:
            self.counts["garbage"] += 1
            return FaultDraw(delay, answer=self._rng.choice(GARBAGE))
        return FaultDraw(delay) if delay else NO_FAULT
