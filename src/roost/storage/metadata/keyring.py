"""Key lookups for every request, cached for at most `key_cache_seconds`.

Unknown keys are cached too, so garbage keys cannot hammer the metadata store. The short
lifetime is what makes revocation effective within a second, from any process. A JWT bearer
token (storage/metadata/tokens.py) is looked up as the jwt-secret that signed it, and cached no longer than it
is valid.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from roost.model import Key
from roost.storage.metadata import Metadata, tokens

MAX_ENTRIES = 10000
MAX_KEPT = 128  # characters of a raw key (or token) kept as the cache's key


class Keyring:
    def __init__(
        self, metadata: Metadata, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.metadata = metadata
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[Key | None, float]] = {}
        self._secrets: dict[str, tuple[list[tuple[Key, str]], float]] = {}

    def find(self, raw: str | None) -> Key | None:
        if not raw:
            return None
        now = self.clock()
        # a client picks the string (up to a header's size): a long one is kept as its digest
        slot = raw if len(raw) <= MAX_KEPT else hashlib.sha256(raw.encode()).hexdigest()
        hit = self._cache.get(slot)
        if hit is not None and hit[1] > now:
            return hit[0]
        until = now + self.ttl
        key: Key | None
        if tokens.looks_like_token(raw):
            key, expires = tokens.verify(raw, self._secrets_of)
            until = min(until, now + expires - time.time())
        else:
            key = self.metadata.find_key(raw)
        if len(self._cache) >= MAX_ENTRIES:
            self._cache.clear()
        self._cache[slot] = (key, until)
        return key

    def _secrets_of(self, site: str) -> list[tuple[Key, str]]:
        now = self.clock()
        hit = self._secrets.get(site)
        if hit is not None and hit[1] > now:
            return hit[0]
        found = self.metadata.jwt_secrets(site)
        if len(self._secrets) >= MAX_ENTRIES:
            self._secrets.clear()
        self._secrets[site] = (found, now + self.ttl)
        return found
