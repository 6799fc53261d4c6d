"""The Log protocol: the one place an event becomes durable.

`append` returns only when the events are on disk (or replicated, in a cluster), with the
offsets they were given, increasing in append order. Consumers follow the Log with `read`;
everything downstream of it can be rebuilt from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from roost.model import Event, LoggedEvent


class Log(Protocol):
    def append(self, events: Sequence[Event]) -> Awaitable[list[int]]:
        """Store events durably; the awaitable gives their offsets or raises BackendError.

        It is a future rather than a coroutine so that a caller can attach a callback that
        runs when the commit is known, even if the caller itself is cancelled meanwhile.
        """
        ...

    async def read(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        """Events with an offset above `after_offset`, in offset order, at most `limit`."""
        ...

    def last_offset(self) -> int:
        """The highest offset given so far (0 for an empty Log)."""
        ...

    async def close(self) -> None:
        """Commit what was acknowledged and release the storage."""
        ...
