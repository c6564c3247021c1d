"""Hot calls retried by tenacity only after they failed, with the same waits as tenacity alone."""

import pytest
from tenacity import RetryCallState, wait_fixed

from lendo_poller.retries import call_retrying


class Flaky:
    """Fails with ``error`` ``failures`` times, then answers how many calls it took."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.calls


async def test_a_call_that_succeeds_is_made_once() -> None:
    flaky = Flaky(0, ConnectionError())
    assert await call_retrying(flaky, retry_on=ConnectionError, wait=wait_fixed(0)) == 1


async def test_failures_are_retried_with_one_wait_each_the_first_included() -> None:
    flaky = Flaky(3, ConnectionError())
    waits: list[int] = []

    def before_sleep(state: RetryCallState) -> None:
        waits.append(state.attempt_number)

    answer = await call_retrying(
        flaky, retry_on=ConnectionError, wait=wait_fixed(0), before_sleep=before_sleep
    )

    assert answer == 4
    assert waits == [1, 2, 3]


async def test_other_errors_are_not_retried() -> None:
    flaky = Flaky(1, ValueError("bad answer"))
    with pytest.raises(ValueError, match="bad answer"):
        await call_retrying(flaky, retry_on=ConnectionError, wait=wait_fixed(0))
    assert flaky.calls == 1


@pytest.mark.parametrize("attempts", [1, 3])
async def test_with_attempts_the_last_error_is_raised_after_that_many_calls(attempts: int) -> None:
    flaky = Flaky(5, ConnectionError("still down"))
    with pytest.raises(ConnectionError, match="still down"):
        await call_retrying(flaky, retry_on=ConnectionError, wait=wait_fixed(0), attempts=attempts)
    assert flaky.calls == attempts


async def test_with_attempts_a_call_that_recovers_in_time_answers() -> None:
    flaky = Flaky(2, ConnectionError())
    assert await call_retrying(flaky, retry_on=ConnectionError, wait=wait_fixed(0), attempts=3) == 3
