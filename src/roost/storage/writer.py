"""Group commit: one writer thread, fed by a queue (Datasette's `execute_write_fn`).

Requests that arrive while a commit runs wait for the next one, so under load many requests
share one commit and at rest a lone request is committed at once. A request's future is
resolved only when the commit holding its events has returned.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable, Sequence

from roost.errors import BackendError
from roost.model import Event

log = logging.getLogger("roost.storage")


class _Pending:
    __slots__ = ("events", "future", "loop")

    def __init__(
        self,
        events: Sequence[Event],
        future: asyncio.Future[list[int]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.events = events
        self.future = future
        self.loop = loop


def _resolve(future: asyncio.Future[list[int]], result: list[int] | BaseException) -> None:
    if future.done():  # the request went away; its events are stored all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class GroupCommit:
    def __init__(
        self,
        commit: Callable[[list[Event]], int],
        *,
        max_events: int,
        idle: Callable[[], None] | None = None,
        name: str = "roost-writer",
    ) -> None:
        """`commit(events)` stores events durably and returns the offset of the first."""
        self._commit = commit
        self._idle = idle
        self._max_events = max_events
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        with self._wake:
            if self._stopping:
                raise BackendError("the event store is shutting down")
            self._queue.append(_Pending(events, future, loop))
            self._wake.notify()
        return await future

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if not self._queue and self._stopping:
                    return
                batch = self._take()
            self._write(batch)
            if not self._queue and self._idle is not None:
                self._idle()

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        count = 0
        queue = self._queue
        while queue and (not taken or count + len(queue[0].events) <= self._max_events):
            pending = queue.popleft()
            taken.append(pending)
            count += len(pending.events)
        return taken

    def _write(self, batch: list[_Pending]) -> None:
        events = [e for p in batch for e in p.events]
        try:
            offset = self._commit(events)
        except Exception as exc:
            log.exception("commit of %d events failed", len(events))
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            error = BackendError(f"the event store could not commit: {text}")
            for p in batch:
                p.loop.call_soon_threadsafe(_resolve, p.future, error)
            return
        for p in batch:
            n = len(p.events)
            p.loop.call_soon_threadsafe(_resolve, p.future, list(range(offset, offset + n)))
            offset += n
