"""The live debugger: every incoming event of a project, as it arrives, with its outcome.

An in-process hub: the ingest path publishes each request's events and outcomes (accepted,
rejected and why, deduplicated); each subscriber (an SSE stream, `roost tail`) has its own
bounded queue, and a subscriber too slow to keep up loses entries (counted in each entry's
`dropped`), never slows ingest down. With no subscriber, publishing costs one dict lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import msgspec

from roost.model import Event, Outcome

QUEUE_ENTRIES = 1000
_to_builtins = msgspec.to_builtins


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_ENTRIES)
        self.dropped = 0

    def offer(self, entry: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait({**entry, "dropped": self.dropped})
        except asyncio.QueueFull:
            self.dropped += 1


class Debugger:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscriber]] = {}

    def watching(self, project_id: int) -> bool:
        return bool(self._subscribers.get(project_id))

    def publish(
        self,
        project_id: int,
        dialect: str,
        received_at: datetime,
        stored: Sequence[Event],
        indexes: Sequence[int],
        outcomes: Sequence[Outcome],
    ) -> None:
        """One request's events (as stored) and outcomes (refused or deduplicated), in order."""
        subscribers = self._subscribers.get(project_id)
        if not subscribers:
            return
        when = received_at.isoformat()
        entries = [
            {
                "outcome": "accepted",
                "dialect": dialect,
                "received_at": when,
                "index": index,
                "event": _to_builtins(e),
            }
            for index, e in zip(indexes, stored, strict=True)
        ]
        entries += [
            {
                "outcome": "deduplicated" if o.reason == "duplicate" else "rejected",
                "dialect": dialect,
                "received_at": when,
                "index": o.index,
                "reason": o.reason,
                "message": o.message,
                "field": o.field,
            }
            for o in outcomes
        ]
        entries.sort(key=lambda entry: entry["index"])
        for subscriber in subscribers:
            for entry in entries:
                subscriber.offer(entry)

    def subscribe(self, project_id: int) -> Subscriber:
        """A subscriber that receives entries from now on, until `unsubscribe`."""
        subscriber = Subscriber()
        self._subscribers.setdefault(project_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, project_id: int, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(project_id, set())
        subscribers.discard(subscriber)
        if not subscribers:
            self._subscribers.pop(project_id, None)

    @staticmethod
    async def entries(
        subscriber: Subscriber, heartbeat: float
    ) -> AsyncIterator[dict[str, Any] | None]:
        """The subscriber's entries as they come; None after every `heartbeat` seconds of quiet."""
        while True:
            try:
                yield await asyncio.wait_for(subscriber.queue.get(), heartbeat)
            except TimeoutError:
                yield None
