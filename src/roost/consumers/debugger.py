"""The live debugger: every incoming event of a project, as it arrives, with its outcome.

An in-process hub: the ingest path publishes each request's events and outcomes (accepted
with contract violations and transformations applied, rejected and why, dropped by a
transformation, deduplicated), and forwarders publish each batch's delivery per destination; each subscriber (an SSE stream, `roost tail`) has its own
bounded queue, and a subscriber too slow to keep up loses entries (counted in each entry's
`dropped`), never slows ingest down. With no subscriber, publishing costs one dict lookup.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from roost.errors import ClientError, RateLimited
from roost.model import Event, Outcome, as_dict

QUEUE_ENTRIES = 256  # a stuck reader holds this much, and costs ingest nothing once full
_OUTCOMES = {"duplicate": "deduplicated", "filtered": "dropped", "sampled": "dropped"}
_encode = msgspec.json.Encoder().encode


class Encoded(NamedTuple):
    """An entry encoded once for every subscriber: its outcome and its JSON object."""

    outcome: bytes
    body: bytes


def encoded(entry: dict[str, Any]) -> Encoded:
    return Encoded(str(entry["outcome"]).encode(), _encode(entry))


MAX_PER_HOLDER = 5  # open streams per key (or dashboard login)
MAX_SUBSCRIBERS = 100  # open streams in all


class TooManyStreams(RateLimited):
    pass


class Subscriber:
    def __init__(self, holder: str) -> None:
        self.holder = holder
        # each entry with how many this subscriber had lost before it: shared, not copied
        self.queue: asyncio.Queue[tuple[Encoded, int]] = asyncio.Queue(QUEUE_ENTRIES)
        self.dropped = 0

    def offer(self, entry: Encoded) -> None:
        """Never waits: a subscriber too slow to keep up loses entries, counted for it."""
        if self.queue.full():  # asked, not raised: a stuck subscriber costs ingest little
            self.dropped += 1
        else:
            self.queue.put_nowait((entry, self.dropped))


class Debugger:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
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
        notes: dict[str, Any] | None = None,
    ) -> None:
        """One request's events (as stored) and outcomes (refused, dropped or deduplicated)."""
        subscribers = self._subscribers.get(project_id)
        if not subscribers:
            return
        when = received_at.isoformat()
        notes = notes or {}
        applied = notes.get("transformations")  # the step labels every stored event went through
        stripped = set(notes.get("consent_stripped", ()))
        warned: dict[int, list[dict[str, Any]]] = {}
        for warning in notes.get("warnings", ()):  # schema drift (pipeline/drift.py)
            warned.setdefault(warning["index"], []).append(warning)
        failed = {o.index: o.message for o in outcomes if o.reason == "transformation_failed"}
        entries = []
        for index, e in zip(indexes, stored, strict=True):
            entry: dict[str, Any] = {
                "outcome": "accepted",
                "dialect": dialect,
                "received_at": when,
                "index": index,
                "event": as_dict(e),
            }
            protocols = e.context.get("protocols")
            if isinstance(protocols, dict) and protocols.get("violations"):
                entry["violations"] = protocols["violations"]
            if index in failed:
                entry["transformation_error"] = failed[index]
            elif applied:
                entry["transformations"] = applied
            if index in stripped:
                entry["consent"] = "stripped"
            if index in warned:
                entry["warnings"] = warned[index]
            entries.append(entry)
        entries += [
            {
                "outcome": _OUTCOMES.get(o.reason, "rejected"),
                "dialect": dialect,
                "received_at": when,
                "index": o.index,
                "reason": o.reason,
                "message": o.message,
                "field": o.field,
            }
            for o in outcomes
            if o.reason != "transformation_failed"
        ]
        entries.sort(key=lambda entry: entry["index"])
        ready = [encoded(entry) for entry in entries]  # once, whoever reads them
        for subscriber in subscribers:
            for ready_entry in ready:
                subscriber.offer(ready_entry)

    def refused(self, project_id: int, dialect: str, error: ClientError, total: int) -> None:
        """A whole request refused after its key was known (rate limit, budget, a bad key kind)."""
        self._offer(
            project_id,
            {
                "outcome": "refused",
                "dialect": dialect,
                "received_at": datetime.now(UTC).isoformat(),
                "status": error.status,
                "reason": error.code,
                "message": error.message,
                "field": error.field,
                "count": total,
            },
        )

    def delivery(self, project_id: int, entry: dict[str, Any]) -> None:
        """A destination's delivery status, from a forwarder's thread."""
        if not self._subscribers.get(project_id) or self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._offer, project_id, entry)

    def _offer(self, project_id: int, entry: dict[str, Any]) -> None:
        ready = encoded(entry)
        for subscriber in self._subscribers.get(project_id, ()):
            subscriber.offer(ready)

    def subscribe(self, project_id: int, holder: str) -> Subscriber:
        """A subscriber that receives entries from now on, until `unsubscribe`; refused when
        its holder (a key, a login) or everyone has as many open as allowed."""
        everyone = [s for group in self._subscribers.values() for s in group]
        if len(everyone) >= MAX_SUBSCRIBERS:
            raise TooManyStreams(
                f"the server has {MAX_SUBSCRIBERS} debugger streams open; try again later",
                retry_after=10,
            )
        if sum(1 for s in everyone if s.holder == holder) >= MAX_PER_HOLDER:
            raise TooManyStreams(
                f"this key has {MAX_PER_HOLDER} debugger streams open; close one first",
                retry_after=10,
            )
        self.loop = asyncio.get_running_loop()
        subscriber = Subscriber(holder)
        self._subscribers.setdefault(project_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, project_id: int, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(project_id, set())
        subscribers.discard(subscriber)
        if not subscribers:
            self._subscribers.pop(project_id, None)

    @staticmethod
    async def entries(
        subscriber: Subscriber, every: float, gather: float = 0.0
    ) -> AsyncIterator[list[Encoded]]:
        """The subscriber's entries as they come, in lists, each entry with `dropped` (how
        many it had lost before it) as the first member of its JSON object; an empty list
        after every `every` seconds of quiet. `gather`: after the first entry, wait that long
        for more, so a stream is written a few times a second under any traffic instead of
        once per event (a hundred open streams woken per event cost ingest ~0.7 ms each)."""
        queue = subscriber.queue
        while True:
            if queue.empty():  # only then a timed wait (each one costs a task)
                try:
                    first = await asyncio.wait_for(queue.get(), every)
                except TimeoutError:
                    yield []
                    continue
                ready = [first]
                if gather:  # each its own length: streams woken together write in one burst
                    await asyncio.sleep(gather * (0.5 + random.random()))
            else:
                ready = []
            while not queue.empty():
                ready.append(queue.get_nowait())
            yield [
                Encoded(entry.outcome, b'{"dropped":%d,' % dropped + entry.body[1:])
                for entry, dropped in ready
            ]
