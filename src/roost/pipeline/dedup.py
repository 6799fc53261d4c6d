"""Dedup: a messageId already stored in the project within the window is acknowledged, not stored.

The index lives in memory, ordered by arrival so expiry is cheap, and is rebuilt from the
Warehouse at start-up, so it survives a restart. Checking and reserving happen in one step
on the event loop, so two concurrent requests with the same messageId cannot both pass; a
reservation whose commit fails is released in `settle`. In a cluster the broker's own
dedup (JetStream's `Nats-Msg-Id`) covers requests that land on different nodes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta

from roost.model import Event, Reason
from roost.pipeline.batch import Batch, Refusal, Verdict


class DedupIndex:
    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._window = window.total_seconds()
        self.seen: OrderedDict[tuple[int, str], float] = OrderedDict()

    def load(self, rows: Iterable[tuple[int, str, datetime]]) -> int:
        loaded = sorted(((when.timestamp(), project, mid) for project, mid, when in rows))
        for stamp, project, mid in loaded:
            self.seen[(project, mid)] = stamp
        return len(loaded)

    def expire(self, now: float) -> None:
        cutoff = now - self.window.total_seconds()
        seen = self.seen
        while seen:
            _, stamp = next(iter(seen.items()))
            if stamp >= cutoff:
                break
            seen.popitem(last=False)

    def reserve(self, project: int, message_id: str, now: float) -> bool:
        """True if the messageId is new (and is now taken); False if it is a duplicate."""
        key = (project, message_id)
        stamp = self.seen.get(key)
        if stamp is None:
            self.seen[key] = now  # new keys go to the end: arrival order is kept
            return True
        if stamp >= now - self._window:
            return False
        self.seen[key] = now
        self.seen.move_to_end(key)
        return True

    def release(self, keys: Iterable[tuple[int, str]]) -> None:
        for key in keys:
            self.seen.pop(key, None)

    def __len__(self) -> int:
        return len(self.seen)


class Dedup:
    def __init__(self, index: DedupIndex) -> None:
        self.index = index

    def __call__(self, batch: Batch) -> None:
        if not batch.events:
            return
        now = batch.events[0].received_at.timestamp()
        self.index.expire(now)
        reserved: list[tuple[int, str]] = []

        def verdict(index: int, event: Event) -> Verdict:
            if self.index.reserve(event.project_id, event.message_id, now):
                reserved.append((event.project_id, event.message_id))
                return None
            field = batch.field(index, "messageId")
            return Refusal(
                Reason.DUPLICATE, f"{field}: {event.message_id!r} was already received", field, 200
            )

        batch.keep(verdict)
        batch.notes["dedup"] = reserved

    def settle(self, batch: Batch, stored: bool) -> None:
        if not stored:
            self.index.release(batch.notes.get("dedup", ()))
