"""Retrying the poller's hot calls (bank requests, ack writes) without paying for it up front.

Nearly every call succeeds at once, yet wrapping each one in tenacity costs
its bookkeeping on every call (docs/performance.md) and leaves an
``AsyncRetrying``, a reference cycle that only a garbage-collector pass frees
(see :mod:`lendo_poller.frozen_actors`). So the first attempt goes without
it, and tenacity takes over only after a failure.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base, stop_never
from tenacity.wait import wait_base

Answer = TypeVar("Answer")


async def call_retrying(
    call: Callable[[], Awaitable[Answer]],
    *,
    retry_on: type[Exception],
    wait: wait_base,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    attempts: int | None = None,
) -> Answer:
    """``call()``, called again after every ``retry_on`` error, waiting ``wait``.

    Without limit, or at most ``attempts`` calls in all, after which the last
    error is raised. The failed first call counts as tenacity's first
    attempt, so the waits and the ``before_sleep`` calls are the same as with
    tenacity all along.
    """
    try:
        return await call()
    except retry_on as error:
        failures = [error]

    async def attempt() -> Answer:
        if failures:
            raise failures.pop()
        return await call()

    stop: stop_base = stop_never if attempts is None else stop_after_attempt(attempts)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
