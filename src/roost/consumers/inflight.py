"""How many ingest requests the server is handling now, readable from another process.

Ingest comes first: the forwarders (in their own process, or in threads) read this and, while
many requests are waiting, send at most a few batches a second each; the Log keeps the rest
until the load eases. One writer (the event loop), so the shared int needs no lock.
"""

from __future__ import annotations

import multiprocessing
from typing import Any


class Inflight:
    def __init__(self, yield_at: int) -> None:
        self.yield_at = yield_at
        self.shared: Any = multiprocessing.get_context("spawn").Value("i", 0, lock=False)

    def enter(self) -> None:
        self.shared.value += 1

    def leave(self) -> None:
        self.shared.value -= 1

    def busy(self) -> bool:
        return bool(self.yield_at) and self.shared.value >= self.yield_at


def reading(shared: Any, yield_at: int) -> Inflight:
    """The same counter, in the process it was handed to."""
    found = Inflight.__new__(Inflight)
    found.yield_at, found.shared = yield_at, shared
    return found
