"""Ingest held back while the Warehouse is far behind the Log, so that what was acknowledged
is queryable within about a second whatever the load.

Ingest can take events faster than the Loader can load them when the two share the cores:
under a saturating load the Warehouse fell ever further behind (bench/RESULTS.md,
2026-12-05: 20 s behind after 10 s of 100-event batches, and the process at 1.4 GB). With a
bound, a request waits before it is read while more than `limit` acknowledged events are not
yet loaded: clients wait a little longer for their answers, and the cores go to loading.

Only for a Loader in this process whose Log counts its backlog by subtraction (the embedded
default); in a cluster, workers elsewhere load at their own pace and JetStream holds the
backlog. A Loader that has not loaded for STALLED_SECONDS (a failing Warehouse) holds no
request back: an acknowledgement waits for the Log, not for the Warehouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

WAIT_SECONDS = 0.25  # a waiting request looks again at least this often
STALLED_SECONDS = 2.0  # no load for this long while behind: the Loader is failing


class Backlog:
    def __init__(self, behind: Callable[[], int] | None, limit: int) -> None:
        """`behind()`: acknowledged events not loaded yet; None or a `limit` of 0: never hold."""
        self._behind = behind
        self.limit = limit if behind is not None else 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loaded = asyncio.Event()
        self._progress_at = float("-inf")  # when the Loader last said it works
        self.held = 0  # requests waiting now

    def loaded(self) -> None:
        """The Loader finished a load, or found nothing to load (on its thread): it is
        working; waiting requests look again."""
        self._progress_at = time.monotonic()
        loop = self._loop
        if loop is not None and self.held:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits on it
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._loaded.set()
        self._loaded = asyncio.Event()

    async def admit(self) -> None:
        """Return once the Warehouse is within `limit` events of the Log (or not loading)."""
        behind = self._behind
        if not self.limit or behind is None or behind() <= self.limit:
            return
        self._loop = asyncio.get_running_loop()
        self.held += 1
        try:
            while behind() > self.limit:
                if time.monotonic() - self._progress_at > STALLED_SECONDS:
                    return  # not loading (failing, or not started): the Log takes events alone
                try:
                    async with asyncio.timeout(WAIT_SECONDS):
                        await self._loaded.wait()
                except TimeoutError:
                    pass
        finally:
            self.held -= 1
