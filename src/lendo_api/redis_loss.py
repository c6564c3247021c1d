"""Noticing that Redis lost its data, so that the outbox republishes at once.

Redis may restart empty (no persistence, a failover to a blank replica, a
flush). Every submission entry it held is gone then, and without notice the
reconciler would find those applications only once they had been quiet for
``republish_after``. So the API keeps a generation key in Redis: while it is
there, Redis still holds what the API gave it; once it is missing, the API
process that writes a new one republishes every pending application, in
bounded batches. The others see the new generation and leave it to that one.
"""

import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lendo_api.reconciler import Reconciler
from lendo_runtime.logs import get_logger
from lendo_runtime.stopping import StopSignal

log = get_logger()


class RedisGeneration:
    """The generation key: written once per Redis lifetime, missing after a loss."""

    def __init__(self, redis: "Redis", key: str) -> None:
        self._redis = redis
        self._key = key

    async def lost(self) -> bool:
        """True if the key was missing and this process wrote the new one.

        A key missing at the API's first look counts too: Redis may have lost
        its data while no API ran, and republishing is always safe.
        """
        # SET NX writes only a missing key: one round trip both looks and repairs.
        return bool(await self._redis.set(self._key, secrets.token_hex(8), nx=True))


class RedisLossWatch:
    """Looks for a lost generation every ``interval`` and has the reconciler republish."""

    def __init__(
        self, generation: RedisGeneration, reconciler: Reconciler, *, interval: float
    ) -> None:
        self._generation = generation
        self._reconciler = reconciler
        self._interval = interval
        self._stop = StopSignal()
        self.losses = 0
        """Losses this process detected and repaired, for metrics."""
        self.looks = 0
        """Looks finished since start, answered or not, for metrics."""

    async def run(self) -> None:
        """Watch until :meth:`stop`; Redis being unreachable only postpones the next look."""
        while not self._stop.is_set():
            try:
                if await self._generation.lost():
                    self.losses += 1
                    log.warning("redis_data_lost")
                    republished = await self._reconciler.republish_pending()
                    log.info("redis_data_restored", republished=republished)
            except RedisError as error:
                log.warning(
                    "redis_generation_check_failed",
                    error=str(error),
                    error_type=type(error).__name__,
                )
            except Exception:
                log.exception("redis_generation_check_failed")
            self.looks += 1
            await self._stop.sleep(self._interval)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the look in hand."""
        self._stop.set()
