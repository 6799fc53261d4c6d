"""Group commit: every request that reached `submit` while the previous commit ran shares
the next one.

The commit (one WAL append and one fsync) runs on a writer thread of its own, one at a time,
while the event loop goes on reading and checking the next requests: they are committed
together as soon as the one before returns, so the group grows with load and the loop never
waits for the disk. (Committing on the loop itself, as Roost first did, stalled every request
for the length of each fsync; bench/RESULTS.md has both.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from roost.errors import BackendError
from roost.model import Event

log = logging.getLogger("roost.storage")

Pending = tuple[Sequence[Event], asyncio.Future[list[int]]]


class GroupCommit:
    def __init__(self, commit: Callable[[list[Event]], int], *, max_events: int) -> None:
        """`commit(events)` stores events durably and returns the offset of the first."""
        self._commit = commit
        self._max_events = max_events
        self._pending: list[Pending] = []
        self._busy = False  # a commit is on the writer thread (or about to be)
        self._closed = False
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="roost-log-writer")
        self._lock = threading.Lock()  # the commit itself: the writer's, or close()'s

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
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start)
        return future

    def close(self) -> None:
        """Commit what is pending and take no more (on the loop's thread, or with it stopped)."""
        self._closed = True
        self._writer.shutdown(wait=True)  # the commit under way, if any, returns first
        while self._pending:
            batch = self._take()
            self._settle(batch, *self._run(batch))

    def _take(self) -> list[Pending]:
        taken, count = 0, 0
        for events, _ in self._pending:
            if taken and count + len(events) > self._max_events:
                break
            taken += 1
            count += len(events)
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch

    def _start(self) -> None:
        if not self._pending or self._closed:
            self._busy = False
            return
        batch = self._take()
        try:
            done = asyncio.get_running_loop().run_in_executor(self._writer, self._run, batch)
        except RuntimeError:  # closed meanwhile from another thread: commit it here
            self._busy = False
            self._settle(batch, *self._run(batch))
            return
        done.add_done_callback(lambda f: self._finished(batch, f))

    def _finished(
        self, batch: list[Pending], done: asyncio.Future[tuple[int, Exception | None]]
    ) -> None:
        offset, error = done.result()
        self._settle(batch, offset, error)
        self._start()  # what arrived meanwhile, as one group

    def _run(self, batch: list[Pending]) -> tuple[int, Exception | None]:
        events = [e for group, _ in batch for e in group]
        with self._lock:
            try:
                return self._commit(events), None
            except Exception as exc:
                log.exception("commit of %d events failed", len(events))
                return 0, exc

    @staticmethod
    def _settle(batch: list[Pending], offset: int, failed: Exception | None) -> None:
        if failed is not None:
            text = str(failed).strip()
            text = text.splitlines()[0] if text else type(failed).__name__
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
