"""Cookieless visitor: hash(daily salt, project, IP, user agent).

The same person on the same device counts as one visitor for a UTC day and cannot be
followed across days: the salt rotates daily and old salts are deleted (Metadata.salt_for),
so yesterday's hashes cannot be recomputed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from roost.pipeline.batch import Batch


class Visitor:
    def __init__(self, salt_for: Callable[[str], bytes]) -> None:
        self.salt_for = salt_for
        self._day = 0
        self._salt = b""

    def salt(self, now: datetime) -> bytes:
        day = now.astimezone(UTC).toordinal()
        if day != self._day:
            self._salt = self.salt_for(datetime.fromordinal(day).strftime("%Y-%m-%d"))
            self._day = day
        return self._salt

    def __call__(self, batch: Batch) -> None:
        if not batch.events:
            return
        key = self.salt(batch.events[0].received_at)[:64]
        made: dict[str, str] = {}  # a request's events mostly share their IP and user agent
        for event in batch.events:
            if not event.ip:
                continue
            ua = event.context.get("userAgent")
            material = f"{event.project_id}\x00{event.ip}\x00{ua if isinstance(ua, str) else ''}"
            visitor = made.get(material)
            if visitor is None:
                visitor = made[material] = hashlib.blake2b(
                    material.encode(), key=key, digest_size=8
                ).hexdigest()
            event.visitor = visitor
