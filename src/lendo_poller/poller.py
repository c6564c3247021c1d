"""The poller: reads submission entries and runs one actor per application.

It owns the bookkeeping around the actors, not their work: which entries are
in flight, how many more it may take, which abandoned entries to take over
and which entries never get an actor (malformed, delivered too often, or a
duplicate of an application already in flight).

Dead consumers: the poller keeps a heartbeat key (:mod:`lendo_streams.heartbeats`)
refreshed every ``heartbeat_interval`` by a task of its own, and as often
takes over the pending entries of every other consumer without one. A
consumer with neither a heartbeat nor pending entries is removed from the
group. XAUTOCLAIM after ``claim_idle`` remains for consumers that keep no
heartbeat.

Duplicates: an entry whose application already has an actor in this process
is acknowledged at once without an update. The running actor's entry still
carries the application, unacknowledged until its update is written, so
nothing is lost, and the bank sees one actor per application.
"""

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from lendo_poller.acks import Acker, AckStats
from lendo_poller.actor import Actors
from lendo_poller.bank import BankClient
from lendo_poller.settings import PollerSettings
from lendo_runtime.logs import get_logger
from lendo_runtime.stopping import StopSignal
from lendo_streams import (
    POLLER_GROUP,
    Entry,
    MalformedEntry,
    SubmissionMessage,
    autoclaim,
    decode,
    ensure_group,
    read_group,
    touch,
)
from lendo_streams.groups import release
from lendo_streams.heartbeats import (
    beat,
    remove_consumer,
    silent_consumers,
    stop_beating,
    take_over,
)
from lendo_streams.trimming import trim_acknowledged

TOUCH_CHUNK = 1_000
"""Entry ids per XCLAIM when refreshing live entries: bounds one Redis reply."""


class Poller:
    """Follows every submitted application at the bank until its final status is published.

    ``run()`` until ``stop()``; ``run(burst=True)`` returns once the stream is
    drained and every actor is done, for tests. Neither closes ``redis`` or
    ``bank``: whoever created them does.
    """

    def __init__(self, settings: PollerSettings, redis: "Redis", bank: BankClient) -> None:
        self._settings = settings
        self._redis = redis
        self._streams = settings.streams
        self._stream = settings.streams.applications
        self._consumer = settings.consumer_name
        self._heartbeat_ttl_ms = round(settings.heartbeat_ttl * 1000)
        self._acker = Acker(redis, settings)
        self._actors = Actors(bank, self._acker, settings, on_done=self._actor_done)
        self._running: dict[bytes, asyncio.Task[None]] = {}
        self._applications: set[UUID] = set()
        self._slot_freed = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._group_ready = False
        self._resumed = False
        self._next_claim = 0.0
        self._next_takeover = 0.0
        self._next_trim = 0.0
        self._consuming: asyncio.Task[None] | None = None
        self.taken_over = 0
        """Entries taken over from other consumers (silent or idle too long) since start."""
        self.trimmed = 0
        """Acknowledged entries this poller removed from the submission stream since start."""
        self._log = get_logger()

    @property
    def in_flight(self) -> int:
        """Actors running now."""
        return len(self._running)

    @property
    def running(self) -> bool:
        """True while :meth:`run` consumes: it was called and its loop has not ended."""
        return self._consuming is not None and not self._consuming.done()

    @property
    def stats(self) -> AckStats:
        """Entries acknowledged so far, by outcome."""
        return self._acker.stats

    def stop(self) -> None:
        """Make ``run()`` stop reading, hand back in-flight entries and return. Idempotent."""
        self._stop_requested.set()

    async def run(self, *, burst: bool = False) -> None:
        """Consume the submission stream until :meth:`stop` (or until drained, if ``burst``)."""
        beats_stop = StopSignal()
        beating = asyncio.create_task(self._keep_beating(beats_stop))
        self._consuming = consuming = asyncio.create_task(self._consume(burst))
        stop_requested = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait({consuming, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_requested.cancel()
            handed_back = list(self._running)
            await self._hand_back(consuming)
            # Asked, not cancelled (lendo_runtime.stopping): redis-py can swallow a
            # cancellation, and a heartbeat under way could land after the sign-off.
            beats_stop.set()
            await beating
            await self._sign_off(handed_back)
        if consuming.done() and not consuming.cancelled():
            consuming.result()

    async def _keep_beating(self, stop: StopSignal) -> None:
        """Refresh the heartbeat every interval, in a task of its own: a blocking read or a
        wait for a free slot must not let it expire."""
        while not stop.is_set():
            try:
                await beat(
                    self._redis,
                    self._streams,
                    POLLER_GROUP,
                    self._consumer,
                    ttl_ms=self._heartbeat_ttl_ms,
                )
            except RedisError as error:
                # The read loop logs and retries Redis failures; beating resumes with it.
                self._log.debug("heartbeat_failed", error=f"{type(error).__name__}: {error}")
            await stop.sleep(self._settings.heartbeat_interval)

    async def _sign_off(self, handed_back: Sequence[bytes]) -> None:
        """Let the other pollers take over the entries handed back now, not a TTL later."""
        try:
            async with asyncio.timeout(self._settings.redis_timeout):
                for start in range(0, len(handed_back), TOUCH_CHUNK):
                    chunk = handed_back[start : start + TOUCH_CHUNK]
                    await release(
                        self._redis,
                        self._stream,
                        POLLER_GROUP,
                        self._consumer,
                        chunk,
                        idle_ms=self._heartbeat_ttl_ms,
                    )
                await stop_beating(self._redis, self._streams, POLLER_GROUP, self._consumer)
        except (RedisError, TimeoutError) as error:
            # The heartbeat expires by itself within its TTL; the entries follow.
            self._log.warning("sign_off_failed", error=f"{type(error).__name__}: {error}")

    async def _hand_back(self, consuming: "asyncio.Task[None]") -> None:
        # Cancelled actors acknowledge nothing, so their entries stay in this
        # consumer's pending list: a restart with the same name resumes them, and
        # other pollers take them over once they are idle for claim_idle.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.shutdown_grace
        handed_back = len(self._running)
        left = {consuming, *self._running.values()}
        while left and loop.time() < deadline:
            # Cancelled again each round: a cancellation that coincides with a
            # client library's own timeout can be turned into that timeout.
            for task in left:
                task.cancel()
            _, left = await asyncio.wait(left, timeout=min(0.1, deadline - loop.time()))
        # Updates that actors handed over before they were cancelled are written,
        # with their acks, while the grace period lasts.
        await self._acker.drain(deadline)
        if handed_back or left:
            self._log.info("actors_handed_back", count=handed_back, stuck=len(left))

    async def _consume(self, burst: bool) -> None:
        while True:
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(RedisError),
                wait=self._settings.backoff,
                before_sleep=self._redis_failed,
                reraise=True,
            )
            drained: bool = await retrying(self._step)
            if burst and drained and not self._running:
                return

    async def _step(self) -> bool:
        """One round of reading; True if the stream had no new entry for us."""
        if not self._group_ready:
            await ensure_group(self._redis, self._stream, POLLER_GROUP)
            self._group_ready = True
        if not self._resumed:
            own = await read_group(
                self._redis,
                self._stream,
                POLLER_GROUP,
                self._consumer,
                count=self._free_slots(),
                own_pending=True,
            )
            await self._admit(own, redelivered=True)
            self._resumed = True
        if asyncio.get_running_loop().time() >= self._next_takeover:
            await self._take_over_silent()
            self._next_takeover = (
                asyncio.get_running_loop().time() + self._settings.heartbeat_interval
            )
        if asyncio.get_running_loop().time() >= self._next_claim:
            await self._claim()
            self._next_claim = asyncio.get_running_loop().time() + self._settings.claim_interval
        if asyncio.get_running_loop().time() >= self._next_trim:
            self.trimmed += await trim_acknowledged(self._redis, self._stream)
            self._next_trim = asyncio.get_running_loop().time() + self._settings.trim_interval
        if not self._free_slots():
            await self._wait_for_slot()
            return False
        entries = await read_group(
            self._redis,
            self._stream,
            POLLER_GROUP,
            self._consumer,
            count=min(self._settings.read_batch, self._free_slots()),
            block_ms=round(self._settings.read_block * 1000),
        )
        await self._admit(entries, redelivered=False)
        return not entries

    async def _wait_for_slot(self) -> None:
        """Sleep until an actor finishes or the next claim round is due.

        Taking over is pointless meanwhile: there is no slot to take anything into.
        """
        self._slot_freed.clear()
        # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a
        # cancellation that arrives as the event is set, and stop() relies on it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(self._next_claim):
                await self._slot_freed.wait()

    async def _take_over_silent(self) -> None:
        """Take over the pending entries of consumers without a heartbeat; forget empty ones."""
        silent = await silent_consumers(
            self._redis, self._streams, self._stream, POLLER_GROUP, exclude=self._consumer
        )
        for consumer in silent:
            if not consumer.pending:
                await remove_consumer(
                    self._redis, self._streams, self._stream, POLLER_GROUP, consumer.name
                )
                continue
            while free := self._free_slots():
                count = min(self._settings.read_batch, free)
                entries = await take_over(
                    self._redis,
                    self._streams,
                    self._stream,
                    POLLER_GROUP,
                    self._consumer,
                    silent=consumer.name,
                    min_idle_ms=self._heartbeat_ttl_ms,
                    count=count,
                )
                if entries:
                    self.taken_over += len(entries)
                    self._log.info("entries_taken_over", count=len(entries), consumer=consumer.name)
                await self._admit(entries, redelivered=True)
                if len(entries) < count:
                    break

    async def _claim(self) -> None:
        """Keep our live entries fresh, then take over entries idle for claim_idle."""
        live = list(self._running)
        for start in range(0, len(live), TOUCH_CHUNK):
            chunk = live[start : start + TOUCH_CHUNK]
            await touch(self._redis, self._stream, POLLER_GROUP, self._consumer, chunk)
        cursor = b"0-0"
        while free := self._free_slots():
            cursor, entries = await autoclaim(
                self._redis,
                self._stream,
                POLLER_GROUP,
                self._consumer,
                min_idle_ms=round(self._settings.claim_idle * 1000),
                start=cursor,
                count=min(self._settings.read_batch, free),
            )
            if entries:
                self.taken_over += len(entries)
                self._log.info("entries_taken_over", count=len(entries))
            await self._admit(entries, redelivered=True)
            if cursor == b"0-0":
                return

    async def _admit(self, entries: Sequence[Entry], *, redelivered: bool) -> None:
        """Start an actor per entry, or settle the entries that must not get one."""
        fresh = [entry for entry in entries if entry.id not in self._running]
        deliveries = await self._deliveries(fresh) if redelivered else {}
        rejects: list[tuple[Entry, str]] = []
        duplicates: list[bytes] = []
        for entry in fresh:
            try:
                message = decode(SubmissionMessage, entry.fields)
            except MalformedEntry as error:
                rejects.append((entry, str(error)))
                continue
            delivered = deliveries.get(entry.id, 1)
            if delivered > self._settings.max_deliveries:
                rejects.append((entry, f"delivered {delivered} times"))
            elif message.id in self._applications:
                duplicates.append(entry.id)
            else:
                self._start(entry, message.id)
        if rejects:
            await self._acker.dead_letter(rejects)
        if duplicates:
            await self._acker.drop_duplicates(duplicates)

    async def _deliveries(self, entries: Sequence[Entry]) -> dict[bytes, int]:
        """How often each entry was delivered, from the group's pending list."""
        if not entries:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xpending_range(self._stream, POLLER_GROUP, min=entry.id, max=entry.id, count=1)
            replies: list[list[dict[str, Any]]] = await pipe.execute()
        return {
            pending["message_id"]: pending["times_delivered"]
            for reply in replies
            for pending in reply
        }

    def _start(self, entry: Entry, application_id: UUID) -> None:
        self._running[entry.id] = asyncio.create_task(self._actors.follow(entry, application_id))
        self._applications.add(application_id)

    def _actor_done(self, entry_id: bytes, application_id: UUID) -> None:
        del self._running[entry_id]
        self._applications.discard(application_id)
        self._slot_freed.set()

    def _free_slots(self) -> int:
        return self._settings.max_in_flight - len(self._running)

    def _redis_failed(self, state: RetryCallState) -> None:
        # After a lost connection Redis may have restarted empty: recreate the group.
        self._group_ready = False
        error = state.outcome.exception() if state.outcome else None
        self._log.warning(
            "redis_unavailable",
            error=f"{type(error).__name__}: {error}",
            retry_in=round(state.upcoming_sleep, 3),
        )
