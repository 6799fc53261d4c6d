"""Group commit on the event loop: every request that reached `submit` in one turn of the
loop shares one commit.

The commit runs on the loop's own thread, not a writer thread: a SQLite commit is one WAL
append and one fsync (well under a millisecond), while handing the GIL to and from a writer
thread cost every commit several milliseconds of waiting under load (bench/RESULTS.md).
While a commit runs the loop does nothing else, so the requests that arrive meanwhile are
read together on the next turn and committed together after it: the group grows with load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from roost.errors import BackendError
from roost.model import Event

log = logging.getLogger("roost.storage")


class GroupCommit:
    def __init__(self, commit: Callable[[list[Event]], int], *, max_events: int) -> None:
        """`commit(events)` stores events durably and returns the offset of the first."""
        self._commit = commit
        self._max_events = max_events
        self._pending: list[tuple[Sequence[Event], asyncio.Future[list[int]]]] = []
        self._scheduled = False
        self._closed = False

    def submit(self, events: Sequence[Event]) -> asyncio.Future[list[int]]:
        """A future of the events' offsets, resolved once their commit has returned."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        if self._closed:
            future.set_exception(BackendError("the event store is shutting down"))
            return future
        if not events:
            future.set_result([])
            return future
        self._pending.append((events, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def close(self) -> None:
        """Commit what is pending and take no more."""
        self._closed = True
        while self._pending:
            self._flush(reschedule=False)

    def _flush(self, reschedule: bool = True) -> None:
        self._scheduled = False
        taken, count = 0, 0
        for events, _ in self._pending:
            if taken and count + len(events) > self._max_events:
                break
            taken += 1
            count += len(events)
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        if reschedule and self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        events = [e for group, _ in batch for e in group]
        try:
            offset = self._commit(events)
        except Exception as exc:
            log.exception("commit of %d events failed", len(events))
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            error = BackendError(f"the event store could not commit: {text}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for group, future in batch:
            n = len(group)
            if not future.done():  # the request went away; its events are stored all the same
                future.set_result(list(range(offset, offset + n)))
            offset += n
