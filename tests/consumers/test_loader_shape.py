"""The Loader feeds each Warehouse in the shape it takes best: ClickHouse few large inserts
(each costs it ~120 ms of CPU whatever its size), DuckDB whenever there is something."""

from __future__ import annotations

from roost.consumers.loader import Loader
from roost.storage.log import Group
from roost.storage.warehouse import LoadShape


class Log:
    def __init__(self) -> None:
        self.last = 0
        self.reads: list[tuple[int, int]] = []
        self.counts: list[tuple[int, int]] = []

    def append(self, n: int) -> None:
        self.last += n

    def last_offset(self) -> int:
        return self.last

    def count_between(self, after: int, up_to: int) -> int:
        self.counts.append((after, up_to))
        return up_to - after

    def read_groups(self, after: int, limit: int) -> list[Group]:
        """At most 10 events a read, as JetStream answers at most ~8 MB."""
        self.reads.append((after, limit))
        count = min(limit, 10, self.last - after)
        return [Group(after + 1, count, b"[]")] if count > 0 else []

    def checkpoint(self) -> None: ...
    def trim(self, received_before: float, loaded_up_to: int) -> int:
        return 0


class Warehouse:
    def __init__(self, shape: LoadShape) -> None:
        self.load_shape = shape
        self.loaded = 0
        self.loads: list[int] = []

    def loaded_offset(self) -> int:
        return self.loaded

    def load(self, groups: list[Group]) -> None:
        self.loads.append(sum(g[1] for g in groups))
        self.loaded = groups[-1][0] + groups[-1][1] - 1

    def maybe_checkpoint(self) -> None: ...

    def tidy(self) -> None: ...


def test_a_warehouse_that_wants_large_loads_gets_them() -> None:
    log, warehouse = Log(), Warehouse(LoadShape(events=25, every=3600.0))
    loader = Loader(log, warehouse)
    log.append(5)
    loader.step()  # the first load: nothing was loaded for `every`
    log.append(5)
    loader.step()  # 5 waiting, under a batch, within `every`: not yet
    assert warehouse.loads == [5]
    log.append(30)
    loader.step()  # a full batch waits: loaded at once, read in pieces up to the batch
    assert warehouse.loads == [5, 25]
    assert len(log.reads) == 1 + 3  # 10 + 10 + 5
    loader._waiters = 1  # a reader waits (caught_up): loaded at once
    loader.step()
    assert warehouse.loads == [5, 25, 10] and warehouse.loaded == log.last


def test_a_warehouse_that_takes_small_loads_gets_each_at_once() -> None:
    log, warehouse = Log(), Warehouse(LoadShape(events=25, every=0.0))
    loader = Loader(log, warehouse)
    for n in (3, 4):
        log.append(n)
        loader.step()
    assert warehouse.loads == [3, 4]


def test_a_waiting_batch_is_counted_as_it_grows_not_again_each_step() -> None:
    """Sparse offsets (JetStream) make the Loader count what waits; each step counts only what
    came since its last count, and a load starts the count over."""
    log, warehouse = Log(), Warehouse(LoadShape(events=25, every=3600.0))
    loader = Loader(log, warehouse)
    log.append(5)
    loader.step()  # the first load
    log.last += 40  # offsets past the batch, but (as with JetStream) not that many events
    original = log.count_between
    log.count_between = lambda after, up_to: (original(after, up_to) + 1) // 4  # type: ignore[method-assign]
    for _ in range(3):
        loader.step()
    log.last += 80
    loader.step()  # 10 + 20 waiting: a full batch, loaded
    assert log.counts == [(5, 45), (45, 45), (45, 45), (45, 125)]
    assert warehouse.loads == [5, 25]
