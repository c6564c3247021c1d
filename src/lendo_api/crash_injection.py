"""A crash on purpose, for the chaos tests (tests/system/chaos), off unless configured.

The one crash a test cannot time from outside is the one between committing
an application and publishing it: the window is a few hundred microseconds.
With ``LENDO_FAULT_CRASH_AFTER_COMMIT`` set, the API dies there, with the
exit status of a ``kill -9``, so the chaos suite can show that the outbox
reconciler publishes what the dead process could not.
"""

import os
import random

from lendo_runtime.logs import get_logger

CRASH_STATUS = 137
"""What a shell reports for a process killed by SIGKILL (128 + 9)."""

log = get_logger()


def maybe_crash(probability: float, point: str) -> None:
    """Exit at once, skipping every cleanup, with the given ``probability``."""
    if probability and random.random() < probability:
        log.warning("fault_crash_injected", point=point)
        os._exit(CRASH_STATUS)
