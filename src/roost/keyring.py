"""Key lookups for every request, cached for at most `key_cache_seconds`.

Unknown keys are cached too, so garbage keys cannot hammer the metadata store. The short
lifetime is what makes revocation effective within a second, from any process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from roost.storage.metadata import Key, Metadata

MAX_ENTRIES = 10000


class Keyring:
    def __init__(
        self, metadata: Metadata, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.metadata = metadata
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[Key | None, float]] = {}

    def find(self, raw: str | None) -> Key | None:
        if not raw:
            return None
        now = self.clock()
        hit = self._cache.get(raw)
        if hit is not None and hit[1] > now:
            return hit[0]
        key = self.metadata.find_key(raw)
        if len(self._cache) >= MAX_ENTRIES:
            self._cache.clear()
        self._cache[raw] = (key, now + self.ttl)
        return key
