"""Garbage collection for a process holding tens of thousands of long-lived actors.

CPython runs a full collection whenever the objects that survived the young
collections grew by a quarter since the last full one, and a full collection
walks every tracked object of the process while holding the event loop: with
tens of thousands of actors, each such pass stalls every actor for a long
moment (docs/performance.md, "Frozen actors").

``gc.freeze()`` moves every tracked object into a permanent generation that
no collection walks. Frozen objects are still freed by reference counting as
soon as nothing refers to them, and that is how an ended actor's objects go:
an actor builds no reference cycle on its normal path (tenacity's retry
objects, which are cycles, appear only after a failed request). What the
permanent generation keeps is cyclic garbage: a cycle alive at a freeze (an
exception with its traceback, a retry's state) that died after it.

The policy, checked every :data:`PERIOD` by :func:`keep_actors_frozen`:

- while actors run, freeze: what they built since the last check leaves the
  walk of every later collection;
- once the process's resident memory exceeds its live size by
  :data:`MIN_GARBAGE`, unfreeze, collect once, and freeze what survived. The
  live size is estimated as the memory right after the last collection plus
  :data:`ACTOR_BYTES` for each actor running beyond the count then. Memory,
  not the frozen generation's length: ``gc.get_freeze_count()`` walks the
  whole frozen list.

Bound: frozen garbage holds at most about :data:`MIN_GARBAGE` of memory
beyond the live estimate. The price is one full collection each time that
much garbage has built up, walking the live actors too: rare, since on the
normal path ended actors leave nothing.
Linux only: the resident size is read from ``/proc/self/statm``.
"""

import asyncio
import gc
import os
import time
from pathlib import Path

from lendo_poller.poller import Poller
from lendo_runtime.logs import get_logger

PERIOD = 0.1
"""Seconds between checks: the objects actors build stay in the collector's walk this long.
Freezing costs next to nothing, and objects left unfrozen longer reach the oldest generation
and feed its full collections (docs/performance.md)."""
ACTOR_BYTES = 4096
"""Memory a running actor holds, rounded up from the measured figure (docs/performance.md,
section 2); more only delays a collection."""
MIN_GARBAGE = 64 * 1024 * 1024
"""Memory above the live estimate that is worth a full collection, in bytes."""
_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class FrozenActors:
    """Freezes the objects of running actors; collects the garbage frozen with them.

    Created, it collects once and freezes what survived: the process's own
    objects (modules, classes, clients) leave the walk before any actor runs.
    """

    def __init__(self, actor_bytes: int = ACTOR_BYTES, min_garbage: int = MIN_GARBAGE) -> None:
        self._actor_bytes = actor_bytes
        self._min_garbage = min_garbage
        self._live_at_collection = 0
        self._in_flight_at_collection = 0
        self.collections = 0
        """Full collections run, the first one included."""
        self._log = get_logger()
        self._collect(in_flight=0)

    def check(self, in_flight: int) -> None:
        """Freeze, or collect what is frozen, given the number of actors running now."""
        added = max(0, in_flight - self._in_flight_at_collection)
        live = self._live_at_collection + self._actor_bytes * added
        if resident_bytes() - live >= self._min_garbage:
            self._collect(in_flight)
        elif in_flight:
            gc.freeze()

    def _collect(self, in_flight: int) -> None:
        began = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        self._live_at_collection = resident_bytes()
        self._in_flight_at_collection = in_flight
        self.collections += 1
        self._log.info(
            "frozen_objects_collected",
            collected=collected,
            resident_mb=round(self._live_at_collection / 2**20),
            in_flight=in_flight,
            seconds=round(time.perf_counter() - began, 3),
        )


async def keep_actors_frozen(poller: Poller, period: float = PERIOD) -> None:
    """Until cancelled, apply :class:`FrozenActors` to ``poller`` every ``period``."""
    frozen = FrozenActors()
    while True:
        await asyncio.sleep(period)
        frozen.check(poller.in_flight)


def resident_bytes() -> int:
    """The process's resident memory now."""
    return int(_STATM.read_bytes().split()[1]) * _PAGE
