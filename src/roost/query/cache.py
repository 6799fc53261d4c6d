"""Answers to the reports Roost writes, kept while the Warehouse's data is unchanged.

A dashboard page asks the same handful of queries every time it is opened; over millions
of events each costs tenths of a second. An answer is reused only under the Warehouse
`version` it was computed at (taken before the query ran), so it is never stale: any load,
identity change or erasure makes every kept answer miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from roost.storage.warehouse import QueryResult


class ResultCache:
    def __init__(self, entries: int = 256) -> None:
        self.entries = entries
        self._items: OrderedDict[str, tuple[int, QueryResult]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, sql: str, version: int) -> QueryResult | None:
        with self._lock:
            found = self._items.get(sql)
            if found is None or found[0] != version:
                self.misses += 1
                return None
            self._items.move_to_end(sql)
            self.hits += 1
            return found[1]

    def put(self, sql: str, version: int, result: QueryResult) -> None:
        with self._lock:
            self._items[sql] = (version, result)
            self._items.move_to_end(sql)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
