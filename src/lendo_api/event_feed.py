"""The event log as it grows, for the server-sent event streams of one API process.

One tailer per process (:meth:`EventFeed.run`) reads the store's log after the
last cursor it has seen, every ``interval``, or at once when nudged (the
store told of a commit of decisions: :meth:`ApplicationStore.follow_event_commits`), and
keeps the newest events; each stream reads from there, and from the store
itself when it is further behind than what is kept (a replay from
``Last-Event-ID``). New events come from the store, never from this
process's own writes, so a stream sees the events of every replica, and a
client reconnecting to another process, or after a restart, resumes from its
cursor without a gap.
"""

import asyncio
import contextlib
from collections import deque
from uuid import UUID

from lendo_api.store import ApplicationStore, StoredEvent
from lendo_runtime.logs import get_logger
from lendo_runtime.stopping import StopSignal

READ_BATCH = 500
KEPT = 5000

log = get_logger()


class EventFeed:
    """The newest events of the store's log, and a wake-up for the streams waiting on them."""

    def __init__(self, store: ApplicationStore, *, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._kept: deque[StoredEvent] = deque(maxlen=KEPT)
        self._since = 0
        self.position = 0
        """The cursor up to which the log has been read; every event up to it had committed."""
        self._advanced = asyncio.Condition()
        self._nudged = asyncio.Event()
        self._stop = StopSignal()

    async def start(self) -> None:
        """Begin at the log's end: older events are read from the store by those who ask."""
        self.position = self._since = await self._store.last_event_cursor()

    async def run(self) -> None:
        """Read the log until :meth:`stop`; a failed read is logged and tried again."""
        while not self._stop.is_set():
            # Cleared before the read: a nudge during it means another read at once.
            self._nudged.clear()
            try:
                events = await self._store.events_after(
                    self.position, application_id=None, owner=None, limit=READ_BATCH
                )
            except Exception as error:
                log.warning(
                    "event_feed_read_failed", error=str(error), error_type=type(error).__name__
                )
                await self._stop.sleep(self._interval)
                continue
            if events:
                self._kept.extend(events)
                self.position = events[-1].cursor
                async with self._advanced:
                    self._advanced.notify_all()
            if len(events) < READ_BATCH:
                await self._pause()
        async with self._advanced:
            self._advanced.notify_all()

    def nudge(self) -> None:
        """Read the log now, not at the next interval: this process has just committed events."""
        self._nudged.set()

    async def _pause(self) -> None:
        """Wait for the interval, a nudge or a stop, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval):
                await self._nudged.wait()

    def stop(self) -> None:
        self._stop.set()
        self._nudged.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    async def end_of_log(self) -> int:
        """The cursor of the newest event committed: a stream from there sends only new ones."""
        return await self._store.last_event_cursor()

    async def read(
        self, after: int, *, application_id: UUID | None, owner: str | None
    ) -> tuple[list[StoredEvent], int]:
        """The events after the cursor ``after`` (of ``application_id`` and ``owner``, if given).

        Returns them, and the cursor to read on from: every event up to it
        that matches has been returned. Served from the events kept when they
        reach back to ``after``, else from the store, a batch at a time.
        """
        position = self.position
        if after >= self._first_kept():
            matching = []
            for event in reversed(self._kept):
                if event.cursor <= after:
                    break
                if _matches(event, application_id, owner):
                    matching.append(event)
            return matching[::-1], max(after, position)
        events = await self._store.events_after(
            after, application_id=application_id, owner=owner, limit=READ_BATCH
        )
        if len(events) == READ_BATCH:
            return events, events[-1].cursor
        # The read began after the feed had seen ``position``: it found every match up to it.
        return events, max([after, position, *(event.cursor for event in events[-1:])])

    async def wait_past(self, cursor: int) -> None:
        """Return once the log has been read beyond ``cursor``, or the feed stops."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.position > cursor or self.stopped)

    def _first_kept(self) -> int:
        """The cursor after which every event is kept."""
        if len(self._kept) < KEPT:
            return self._since
        return self._kept[0].cursor - 1


def _matches(event: StoredEvent, application_id: UUID | None, owner: str | None) -> bool:
    return (application_id is None or event.application_id == application_id) and (
        owner is None or event.owner == owner
    )
