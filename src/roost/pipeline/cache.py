"""A per-project setting as the hot path reads it: loaded once, kept for `ttl` seconds.

A change made through the CLI, the admin API or the config file reaches every ingest
process within `ttl` without the hot path querying the metadata store per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProject(Generic[T]):
    def __init__(
        self,
        load: Callable[[int], T],
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load = load
        self.ttl = ttl
        self.clock = clock
        self._cached: dict[int, tuple[T, float]] = {}

    def __call__(self, project_id: int) -> T:
        now = self.clock()
        cached = self._cached.get(project_id)
        if cached is None or cached[1] <= now:
            cached = self._cached[project_id] = (self.load(project_id), now + self.ttl)
        return cached[0]

    def forget(self, project_id: int | None = None) -> None:
        """Drop what is cached (for one project, or all), so the next read loads it anew."""
        if project_id is None:
            self._cached.clear()
        else:
            self._cached.pop(project_id, None)
