"""Coalescing concurrent calls into one batch: group commit, pipelined XADDs, shared acks.

Under load, many callers want the same slow, serial step at once (a SQLite
transaction, a Redis round trip). Doing it once for all of them costs about
what doing it for one costs, so the throughput of the step grows with the
load instead of capping it. The API batches its commits and publishes this
way, the poller its acknowledgements.
"""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs ``flush(items)`` for everything submitted while the previous flush ran.

    No timer: an idle batcher flushes a lone item at once, so batching adds
    no latency; under load the batch is whatever arrived during one flush.
    ``flush`` returns one result per item, in order, or the exception that
    item failed with, which only its submitter gets; if ``flush`` raises,
    every submitter in the batch gets the error. A flush runs in its own task, so a
    cancelled submitter never interrupts it: its items are still flushed.
    That task starts with an empty context: it works for every submitter, so
    it must not carry the context variables (log fields) of the first one.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[Sequence[R | Exception]]]) -> None:
        self._flush = flush
        self._queued: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[T], *, give_up_after: float | None = None) -> list[R]:
        """Flush ``items`` with whatever else is waiting; return their results.

        With ``give_up_after``, raise :class:`TimeoutError` if they are not
        flushed within that many seconds; they are still flushed, later.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        self._queued.append((items, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), context=contextvars.Context())
        if give_up_after is None:
            return await future
        # A timer on the future itself: cheaper than asyncio.timeout() around the
        # await, on every create (docs/performance.md).
        expiry = loop.call_later(give_up_after, _expire, future)
        try:
            return await future
        finally:
            expiry.cancel()

    async def drain(self) -> None:
        """Wait until everything submitted so far is flushed."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def cancel(self) -> None:
        """Stop flushing: the flush under way is cancelled, and the items not yet flushed dropped.

        Their submitters, if still waiting, get :class:`asyncio.CancelledError`.
        """
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        queued: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        try:
            while self._queued:
                queued, self._queued = self._queued, []
                items = [item for submitted, _ in queued for item in submitted]
                try:
                    results = list(await self._flush(items))
                except Exception as error:
                    for _, future in queued:
                        if not future.done():
                            future.set_exception(error)
                    continue
                start = 0
                for submitted, future in queued:
                    mine = results[start : start + len(submitted)]
                    start += len(submitted)
                    if future.done():
                        continue
                    failure = next((r for r in mine if isinstance(r, Exception)), None)
                    if failure is None:
                        future.set_result(cast(list[R], mine))
                    else:
                        future.set_exception(failure)
        finally:
            # Only a cancelled flush leaves submitters waiting: none may wait forever.
            abandoned, self._queued = [*queued, *self._queued], []
            for _, future in abandoned:
                future.cancel()
            self._task = None


def _expire(future: "asyncio.Future[Any]") -> None:
    if not future.done():
        future.set_exception(TimeoutError())
