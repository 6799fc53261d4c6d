"""The Log protocol: the one place an event becomes durable.

`append` completes only when the events are on disk (or replicated, in a cluster), with the
offsets they were given, increasing in append order. Consumers follow the Log by offset;
everything downstream of it can be rebuilt from it. Events are stored in groups (one per
group commit), each a JSON array: `read_groups` hands them on as they are, so a Warehouse
can parse them itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, Protocol

import msgspec

from roost.model import Event, LoggedEvent


class Group(NamedTuple):
    """Events as one append stored them: read and loaded whole, never parsed on the way."""

    first: int  # the offset of the first event
    size: int  # how many events
    events: bytes  # a JSON array of them


_decode = msgspec.json.Decoder(list[Event]).decode


class Erased(NamedTuple):
    """What `Log.erase` did: the messageIds erased, and the offset ranges (first, last) whose
    other events a Log that cannot rewrite in place stored again at new offsets (JetStream):
    the Warehouse must drop its rows of those ranges once it has loaded the new ones."""

    message_ids: list[str]
    replaced: list[tuple[int, int]]


def logged_events(groups: Sequence[Group], after_offset: int, limit: int) -> list[LoggedEvent]:
    """The events of groups after `after_offset`, at most `limit` (every Log's `read_sync`)."""
    found: list[LoggedEvent] = []
    for first, _, blob in groups:
        found.extend(
            LoggedEvent(first + i, event)
            for i, event in enumerate(_decode(blob))
            if first + i > after_offset
        )
    return found[:limit]


class LogReader(Protocol):
    """What a consumer in another process than the writer needs: reading, by offset."""

    def last_offset(self) -> int:
        """The highest offset given so far (0 for an empty Log)."""
        ...

    def read_sync(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        """Events with an offset above `after_offset`, in offset order, at most `limit`."""
        ...

    def offset_before(self, received_at: float) -> int:
        """The offset to read after to replay what was received at or after a time (epoch s)."""
        ...

    def count_between(self, after_offset: int, up_to: int) -> int:
        """How many events have an offset in (after_offset, up_to]: offsets need not be
        dense (JetStream's are not), so a lag is counted here, never by subtraction."""
        ...

    def close_sync(self) -> None: ...


class Log(LogReader, Protocol):
    def append(self, events: Sequence[Event]) -> Awaitable[list[int]]:
        """Store events durably; the awaitable gives their offsets or raises BackendError.

        It is a future rather than a coroutine so that a caller can attach a callback that
        runs when the commit is known, even if the caller itself is cancelled meanwhile.
        """
        ...

    def subscribe(self, on_commit: Callable[[int, int, bytes], None]) -> None:
        """Call `on_commit(first_offset, count, json_array)` after each commit."""
        ...

    async def read(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        """Events with an offset above `after_offset`, in offset order, at most `limit`."""
        ...

    def read_groups(
        self, after_offset: int, limit: int, identities_only: bool = False
    ) -> list[Group]:
        """The groups holding the events after `after_offset` (the first may start before)."""
        ...

    def checkpoint(self) -> None:
        """Housekeeping the store needs now and then (never blocks `append`)."""
        ...

    def trim(self, received_before: float, loaded_up_to: int) -> int:
        """Drop groups received before a time and wholly at or below an offset."""
        ...

    def drain(self) -> None:
        """Commit what is pending and take no more appends."""
        ...

    def erase(
        self, project_id: int, matches: Callable[[Event], bool], hints: Sequence[str] = ()
    ) -> Erased:
        """Make the project's stored events that match unreadable: tombstones where the Log
        can rewrite (offsets stay), else deleted, the rest of their group stored again;
        `hints`: strings a group must contain to hold one."""
        ...

    def scrub(self) -> bool:
        """Make what `erase` replaced unreadable in every file the Log keeps; False when it
        could not finish now (try again later)."""
        ...
