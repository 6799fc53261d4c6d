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

    def append(self, n: int) -> None:
        self.last += n

    def last_offset(self) -> int:
        return self.last

    def count_between(self, after: int, up_to: int) -> int:
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
