"""The poller's loop-lag probe: a loop held by synchronous work shows up as lag."""

import asyncio
import contextlib
import time

from lendo_poller.loop_lag import watch_loop_lag


def hold_the_loop(seconds: float) -> None:
    """Synchronous work on the event loop: what the probe exists to see."""
    time.sleep(seconds)


async def test_a_held_event_loop_is_reported_at_least_as_long_as_it_was_held() -> None:
    lags: list[float] = []
    observed = asyncio.Event()

    def observe(lag: float) -> None:
        lags.append(lag)
        observed.set()

    probe = asyncio.create_task(watch_loop_lag(observe, period=0.01))
    await asyncio.sleep(0)  # the probe's timer is set
    hold_the_loop(0.2)
    await observed.wait()
    probe.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await probe

    # The timer could not fire while the loop was held: the lag is at least the rest.
    assert lags[0] >= 0.2 - 0.01
