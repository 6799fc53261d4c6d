"""Room on the disk: a store refuses to write into the last `disk_reserve_mb` of its file
system, so a full disk is a clear refusal (ingest answers 503, nothing acknowledged that was
not stored) and never a write that fails halfway, and the Warehouse's catch-up and the
shutdown's checkpoints still have room to finish."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from roost.errors import BackendError

CHECK_SECONDS = 0.25  # free space is asked again at most this often


class Room:
    def __init__(
        self, path: Path, reserve_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.reserve = reserve_bytes
        self.clock = clock
        self._free = 0
        self._asked = float("-inf")

    def free(self) -> int:
        now = self.clock()
        if now - self._asked >= CHECK_SECONDS:
            try:
                stat = os.statvfs(self.path)
                self._free = stat.f_bavail * stat.f_frsize
            except OSError:
                self._free = self.reserve + 1  # cannot tell: let the write itself say
            self._asked = now
        return self._free

    def enough(self, share: float = 1.0) -> bool:
        """Whether more than `share` of the reserve is free."""
        return self.reserve <= 0 or self.free() > self.reserve * share

    def problem(self) -> str:
        return (
            f"the disk holding {self.path} is full: {self.free() / (1 << 20):.1f} MB free, "
            f"under the {self.reserve / (1 << 20):g} MB reserve (disk_reserve_mb); free some "
            "space and ingest resumes"
        )

    def check(self, share: float = 1.0) -> None:
        """BackendError (a 503 to a client) unless there is room."""
        if not self.enough(share):
            raise BackendError(self.problem())


def file_path(url: str) -> str:
    """The path of a `scheme:///path` URL (relative), or `scheme:////path` (absolute)."""
    return url.partition("://")[2].removeprefix("/")
