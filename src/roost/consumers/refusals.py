"""The events a request did not store — refused by a stage, or deduplicated — remembered by
messageId for a while, so a trace (query/trace.py) can say what happened to an event that
never reached the Log. In memory, bounded (MAX_REMEMBERED ids, the oldest forgotten first;
texts cut to MAX_TEXT: a client chooses the property names a message quotes):
this process's own requests, for as long as it runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from roost.model import Outcome

MAX_REMEMBERED = 20_000  # ids; each with its last KEPT_TIMES times, MAX_TEXT characters
KEPT_TIMES = 3
MAX_TEXT = 300


class Refusals:
    def __init__(self, most: int = MAX_REMEMBERED) -> None:
        self.most = most
        self._seen: OrderedDict[tuple[int, str], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(
        self, project_id: int, dialect: str, received_at: datetime, outcomes: Sequence[Outcome]
    ) -> None:
        with self._lock:
            for o in outcomes:
                if o.message_id is None:
                    continue
                key = (project_id, o.message_id)
                entry = {"at": received_at.isoformat(), "dialect": dialect, "reason": str(o.reason),
                         "message": o.message[:MAX_TEXT], "field": (o.field or "")[:MAX_TEXT] or None,
                         "stored": o.stored}  # fmt: skip
                found = self._seen.pop(key, None) or []
                self._seen[key] = [*found[-(KEPT_TIMES - 1) :], entry]  # its last times
            while len(self._seen) > self.most:
                self._seen.popitem(last=False)

    def of(self, project_id: int, message_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._seen.get((project_id, message_id), ()))
