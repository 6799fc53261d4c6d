"""The Loader: follows the Log into the Warehouse, in large batches, on its own thread.

Acknowledgement waits only for the Log; the Warehouse catches up behind it, every
`interval` or whenever a full batch is waiting. A reader that must see everything
acknowledged so far (the SQL endpoint) asks `caught_up(offset)` first, which wakes the
Loader and returns once it has loaded that far — normally within a few ms — so an
acknowledged event is visible to the next query. At start-up `catch_up()` loads whatever
the Log holds beyond the Warehouse (events acknowledged just before a crash).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Protocol

from roost import metrics
from roost.consumers.follower import Follower
from roost.storage.log import Group
from roost.storage.warehouse import LoadShape


def _new_events(groups: list[Group], after: int) -> int:
    """How many events of these groups have an offset above `after`."""
    return sum(max(0, first + n - 1 - max(first - 1, after)) for first, n, _ in groups)


class Source(Protocol):
    def last_offset(self) -> int: ...
    def count_between(self, after_offset: int, up_to: int) -> int: ...
    def read_groups(self, after_offset: int, limit: int) -> list[Group]: ...
    def checkpoint(self) -> None: ...
    def trim(self, received_before: float, loaded_up_to: int) -> int: ...


class Sink(Protocol):
    load_shape: LoadShape

    def loaded_offset(self) -> int: ...
    def load(self, groups: list[Group]) -> None: ...
    def maybe_checkpoint(self) -> None: ...
    def tidy(self) -> None: ...


class Loader(Follower):
    name = "roost-loader"

    def __init__(
        self,
        source: Source,
        sink: Sink,
        *,
        batch_events: int | None = None,
        interval: float = 0.1,
        retention: float = 7 * 86400.0,
        holds: Callable[[], int] | None = None,
        also: Callable[[], None] | None = None,
        loaded: Callable[[], None] | None = None,
    ) -> None:
        """`holds()` is the lowest offset another consumer of the Log has yet to apply;
        `also()` is other work that writes to the Warehouse, run on this, its one writer thread;
        `loaded()` is told of each load done and each look that found nothing to load.
        """
        super().__init__(interval)
        self.source = source
        self.sink = sink
        self.batch_events = batch_events or sink.load_shape.events
        self.every = sink.load_shape.every
        self._loaded_at = float("-inf")  # not 0: time.monotonic() may be small after a boot
        self.retention = retention
        self.holds = holds
        self.also = also
        self.loaded = loaded
        self._trimmed_at = 0.0
        self._recent: collections.deque[Group] = collections.deque()
        self._recent_count = 0
        self._recent_lock = threading.Lock()
        self._full = False  # the last load was a whole batch: more may be waiting
        self._waiting = (0, 0, 0)  # (loaded, last, events between): counted as they grow

    def position(self) -> int:
        return self.sink.loaded_offset()

    def catch_up(self) -> int:
        """Load everything the Log holds beyond the Warehouse, on the calling thread."""
        loaded = 0
        while self.sink.loaded_offset() < self.source.last_offset():
            groups = self.source.read_groups(self.sink.loaded_offset(), self.batch_events)
            if not groups:
                break
            loaded += _new_events(groups, self.sink.loaded_offset())
            self.sink.load(groups)
        return loaded

    def notify(self, first_offset: int, count: int, events: bytes) -> None:
        """Called by the Log after each commit, with what it committed.

        The group is kept in memory for the next load, which then needs no read back from
        the Log; if too many pile up, they are dropped and the Log is read instead.
        """
        with self._recent_lock:
            self._recent.append(Group(first_offset, count, events))
            self._recent_count += count
            while self._recent_count > 2 * self.batch_events:
                self._recent_count -= self._recent.popleft()[1]
        if first_offset + count - 1 - self.sink.loaded_offset() >= self.batch_events:
            self.poke()

    def _next_batch(self, last: int) -> list[Group]:
        """What follows the Warehouse: from memory when it is contiguous, else from the Log."""
        loaded = self.sink.loaded_offset()
        batch: list[Group] = []
        with self._recent_lock:
            recent = self._recent
            while recent and recent[0][0] + recent[0][1] - 1 <= loaded:
                self._recent_count -= recent.popleft()[1]
            following = loaded + 1
            for first, count, events in recent:
                if first > following or following - loaded > self.batch_events:
                    break
                batch.append(Group(first, count, events))
                following = first + count
        if batch:
            return batch
        # from the Log, until a batch or `last`: a read may answer fewer than asked (JetStream:
        # ~8 MB a read)
        got = 0
        while True:
            more = self.source.read_groups(loaded, self.batch_events - got)
            batch += more
            got += _new_events(more, loaded)
            end = more[-1][0] + more[-1][1] - 1 if more else loaded
            if got >= self.batch_events or end <= loaded or end >= last:
                return batch
            loaded = end

    def _waiting_events(self, loaded: int, last: int) -> int:
        """The events after `loaded` up to `last`, counting only what came since the last ask
        (a count reads the Log: JetStream ~3 ms a 1 MB read, every step while a load waits)."""
        was_loaded, was_last, count = self._waiting
        if was_loaded != loaded or was_last > last:
            was_last, count = loaded, 0
        count += self.source.count_between(was_last, last)
        self._waiting = (loaded, last, count)
        return count

    def trim(self, now: float | None = None) -> int:
        """Drop from the Log what the Warehouse holds and is older than the retention.

        Runs at most once a minute unless `now` is given.
        """
        clock = time.time() if now is None else now
        if now is None and clock - self._trimmed_at < 60:
            return 0
        self._trimmed_at = clock
        up_to = self.sink.loaded_offset()
        if self.holds is not None:
            up_to = min(up_to, self.holds())
        return self.source.trim(clock - self.retention, up_to)

    def finish(self) -> None:
        self.catch_up()
        if self.also is not None:
            self.also()

    def failed(self) -> None:
        metrics.WAREHOUSE_LOAD_ERRORS.inc()

    def step(self) -> None:
        # Loads every `interval`, or at once when a batch is full or a reader waits: few large
        # loads cost the ingest path far less than many small ones.
        if self.also is not None:
            self.also()
        loaded, last = self.sink.loaded_offset(), self.source.last_offset()
        if loaded >= last:
            self.sink.tidy()
            if self.loaded is not None:
                self.loaded()
            return
        if (
            self.every
            and time.monotonic() - self._loaded_at < self.every
            and not self._waiters
            and not self._full
            and (  # offsets bound the events from above: count only when a batch may wait
                last - loaded < self.batch_events
                or self._waiting_events(loaded, last) < self.batch_events
            )
        ):
            return  # this Warehouse takes few large loads better than many small ones
        self._loaded_at = time.monotonic()
        batch = self._next_batch(last)
        self._full = _new_events(batch, loaded) >= self.batch_events
        self.sink.load(batch)
        if self.loaded is not None:
            self.loaded()
        if self._full:  # more is waiting: load it next, without waiting for a commit's poke
            self.poke()
        # The Warehouse checkpoints past its threshold on a thread of its own; the Log's
        # checkpoint and the trim wait for a moment with nothing to load and no reader waiting.
        idle = not self._waiters and self.sink.loaded_offset() >= self.source.last_offset()
        self.sink.maybe_checkpoint()
        if idle:
            self.source.checkpoint()
            self.trim()
