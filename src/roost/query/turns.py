"""Turns per project on the query threads: one tenant's queries cannot take every thread.

The query threads are few (`query_concurrency`) and shared by every project; without turns,
two clients of one project asking for heavy SQL in a loop hold two of them (two cores on a
small machine) while other projects' queries wait and ingest shares the CPU with them. A
project runs at most so many queries at once; the rest wait their turn, up to a limit, then
get a 429 saying so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from roost.errors import RateLimited


class Turns:
    def __init__(self, per_project: int, what: str) -> None:
        self.per_project = max(1, per_project)
        self.what = what  # "SQL queries", "reports": named in the 429
        self._running: dict[int, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def turn(self, project_id: int, wait: float) -> AsyncIterator[None]:
        """Hold one of the project's places while the body runs, after waiting at most `wait`
        seconds for one."""
        places = self._running.get(project_id)
        if places is None:
            places = self._running[project_id] = asyncio.Semaphore(self.per_project)
        try:
            await asyncio.wait_for(places.acquire(), wait)
        except TimeoutError:
            raise RateLimited(
                f"this project already runs {self.per_project} {self.what} at once and none "
                f"finished within {wait:g} s; try again when one has",
                retry_after=max(1, math.ceil(wait)),
            ) from None
        try:
            yield
        finally:
            places.release()
