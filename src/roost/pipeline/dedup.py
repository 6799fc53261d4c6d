"""Dedup: a messageId already stored in the project within the window is acknowledged, not stored.

The index lives in memory, in buckets of a minute so expiry is cheap, and is rebuilt from
the Warehouse at start-up, so it survives a restart. It holds at most `max_ids` ids (each
~125 bytes with its string): past that the oldest minutes go before the window ends, and
`remembers_since` says how far back it still reaches (a metric and a warning tell the
operator), rather than a busy project's week of ids taking gigabytes. The ids Roost makes for
events sent without one are never duplicates and are not remembered. Checking and reserving
happen in one step on the event loop, so two concurrent requests with the same messageId
cannot both pass; a reservation whose commit fails is released in `settle`. In a cluster the
broker's own dedup (JetStream's `Nats-Msg-Id`) covers a retried request that lands on
another node.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from roost.model import Event, Reason
from roost.pipeline.batch import Batch, Refusal, Verdict

BUCKET_SECONDS = 60  # the window's resolution: a messageId is kept to the minute
EXPIRE_BUDGET = 10_000  # ids expiry may drop in one request (~1 ms)


class DedupIndex:
    """The messageIds of the window, per project, with the minute each arrived in.

    Compact, as it holds every messageId of the window: per id one dict slot (its key the
    Event's own string) and one list slot in its minute's bucket, ~40 bytes beside the id.
    An id is a duplicate for `window` after its minute, whatever expiry has done yet: expiry
    only gives memory back, minute by minute, at most `EXPIRE_BUDGET` ids per request (a
    minute of heavy traffic holds millions; dropping them at once would stall the loop).
    """

    def __init__(
        self,
        window: timedelta,
        max_ids: int = 2_000_000,
        forgetting: Callable[[float], None] | None = None,
    ) -> None:
        """`forgetting(seconds)`: told, at most hourly, that ids go after only `seconds`."""
        self._window = window.total_seconds()
        self.max_ids = max_ids
        self._forgetting = forgetting
        self._told_at = float("-inf")
        self.held = 0  # ids in the minutes' lists (each id of the dicts is in one or more)
        self._forgot_before = float("-inf")  # ids before this went early, for room
        self.projects: dict[int, dict[str, int]] = {}  # project → messageId → minute
        # oldest first: (minute, project → the messageIds that arrived in it)
        self.minutes: deque[tuple[int, dict[int, list[str]]]] = deque()
        # what expiry is dropping: (minute, that project's ids, their ids), and how far it is
        self._dropping: deque[tuple[int, dict[str, int], list[str]]] = deque()
        self._dropped = 0

    def load(self, rows: Iterable[tuple[int, str, datetime]]) -> int:
        """The newest `max_ids` of these (the Warehouse's ids of the window, in Log order)."""
        newest = deque(((when.timestamp(), project, mid) for project, mid, when in rows),
                       maxlen=self.max_ids)  # fmt: skip
        for stamp, project, mid in sorted(newest):
            self.reserve(project, mid, stamp)
        return len(newest)

    def remembers_since(self, now: float) -> float:
        """The time from which a messageId is still known (epoch s)."""
        return max(now - self._window, self._forgot_before)

    def expire(self, now: float, budget: int = EXPIRE_BUDGET) -> None:
        oldest = int((now - self._window) // BUCKET_SECONDS)
        dropping, minutes = self._dropping, self.minutes
        while budget > 0:
            if not dropping:
                full = self.held > self.max_ids and len(minutes) > 1  # the newest minute stays
                if not minutes or (minutes[0][0] >= oldest and not full):
                    return
                minute, arrived = minutes.popleft()
                if minute >= oldest:  # within the window: gone early, for room
                    self._forgot_before = (minute + 1) * BUCKET_SECONDS
                    if self._forgetting is not None and now - self._told_at >= 3600:
                        self._told_at = now
                        self._forgetting(now - self._forgot_before)
                dropping.extend((minute, self.projects[p], ids) for p, ids in arrived.items())
                self._dropped = 0
                continue
            minute, seen, ids = dropping[0]
            end = min(len(ids), self._dropped + budget)
            for mid in ids[self._dropped : end]:
                if seen.get(mid) == minute:  # not reserved again since, nor released
                    del seen[mid]
            budget -= end - self._dropped
            self.held -= end - self._dropped
            if end == len(ids):
                dropping.popleft()
                self._dropped = 0
            else:
                self._dropped = end

    def reserve(self, project: int, message_id: str, now: float) -> bool:
        """True if the messageId is new (and is now taken); False if it is a duplicate."""
        seen = self.projects.get(project)
        if seen is None:
            seen = self.projects[project] = {}
        minute = int(now // BUCKET_SECONDS)
        taken = seen.get(message_id)
        if taken is not None and (minute - taken) * BUCKET_SECONDS <= self._window:
            return False
        minutes = self.minutes
        if not minutes or minutes[-1][0] < minute:
            minutes.append((minute, {}))
        bucket, arrived = minutes[-1]  # a clock stepping back stays in the newest minute
        seen[message_id] = bucket  # the bucket's own int: shared, not one per id
        ids = arrived.get(project)
        if ids is None:
            ids = arrived[project] = []
        ids.append(message_id)
        self.held += 1
        return True

    def release(self, keys: Iterable[tuple[int, str]]) -> None:
        for project, message_id in keys:
            seen = self.projects.get(project)
            if seen is not None:
                seen.pop(message_id, None)

    def __len__(self) -> int:
        return sum(len(seen) for seen in self.projects.values())


class Dedup:
    def __init__(self, index: DedupIndex) -> None:
        self.index = index

    def __call__(self, batch: Batch) -> None:
        if not batch.events:
            return
        now = batch.events[0].received_at.timestamp()
        index = self.index
        index.expire(now)
        reserved: list[tuple[int, str]] = []
        batch.notes["dedup"] = reserved
        made = batch.parsed.made  # ids Roost made for events sent without one: unique
        for event in batch.events:  # the common case: every messageId new
            if made and event.message_id in made:
                continue
            if not index.reserve(event.project_id, event.message_id, now):
                break
            reserved.append((event.project_id, event.message_id))
        else:
            return
        mine = set(reserved)  # reserved by this request: kept; the rest, duplicates

        def verdict(position: int, event: Event) -> Verdict:
            if event.message_id in made:
                return None
            key = (event.project_id, event.message_id)
            if key in mine:
                mine.discard(key)  # a second copy in the same request is a duplicate
                return None
            if index.reserve(event.project_id, event.message_id, now):
                reserved.append(key)
                return None
            field = batch.field(position, "messageId")
            return Refusal(
                Reason.DUPLICATE, f"{field}: {event.message_id!r} was already received", field, 200
            )

        batch.keep(verdict)

    def settle(self, batch: Batch, stored: bool) -> None:
        if not stored:
            self.index.release(batch.notes.get("dedup", ()))
