"""Rate-limit buckets shared by several ingest nodes (`rate_limit_url`): the bucket lives in a
database row and each node draws on it in slices of a tenth of a second's tokens, kept
locally, so a node asks the database about ten times a second per busy key rather than once
per request, and all nodes together admit the key's rate.

The key-less trackers' buckets are per client address (`site:<project>:<address>`): any
number of them. A node keeps at most MAX_HELD keys' slices (past it, it lets go of them all:
at most a slice's tokens each), and every PRUNE_SECONDS deletes the address buckets untouched
for IDLE_SECONDS — full by then at any sane `site_rate`, so the same as no row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from roost.pipeline.ratelimit import Buckets, LocalBuckets
from roost.storage.metadata import create_tables

MAX_HELD = 100_000
PRUNE_SECONDS = 60.0
IDLE_SECONDS = 3600.0
PER_ADDRESS = "site:"  # the prefix of buckets per client address (storage/metadata/sites.py)

_schema = sa.MetaData()
_shared = sa.Table(
    "rate_buckets",
    _schema,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("stamp", sa.Float, nullable=False),  # Unix time: every node's clock reads it
)


class SharedBuckets:
    """Buckets in a database row each, drawn on in slices by every node."""

    def __init__(
        self, url: str, slice_seconds: float = 0.1, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = sa.create_engine(url)
        create_tables(self.engine, _schema)
        self.slice_seconds = slice_seconds
        self.clock = clock
        self.held: dict[str, float] = {}  # tokens drawn and not used yet (negative: owed)
        self._lock = threading.Lock()
        self._pruned = clock()

    def take(self, key_id: str, rate: float, burst: float, n: int) -> float:
        need = min(float(n), burst)
        with self._lock:
            if len(self.held) >= MAX_HELD and key_id not in self.held:
                self.held.clear()
            if self.clock() - self._pruned >= PRUNE_SECONDS:
                self._prune()
            held = self.held.get(key_id, 0.0)
            if held < need:
                held += self._draw(key_id, rate, burst, need - held + rate * self.slice_seconds)
            if held >= need:
                self.held[key_id] = held - n
                return 0.0
            self.held[key_id] = held
            return (need - held) / rate

    def give(self, key_id: str, n: int) -> None:
        with self._lock:
            self.held[key_id] = self.held.get(key_id, 0.0) + n

    def _draw(self, key_id: str, rate: float, burst: float, want: float) -> float:
        """Move up to `want` tokens from the shared bucket to this node."""
        for attempt in range(2):  # two nodes making the key's row at once: one retries
            try:
                return self._draw_once(key_id, rate, burst, want)
            except sa.exc.IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _draw_once(self, key_id: str, rate: float, burst: float, want: float) -> float:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(_shared.c.tokens, _shared.c.stamp)
                .where(_shared.c.key_id == key_id)
                .with_for_update()
            ).first()
            if row is None:
                tokens = burst
                conn.execute(_shared.insert().values(key_id=key_id, tokens=0.0, stamp=now))
            else:
                tokens = min(burst, row.tokens + max(0.0, now - row.stamp) * rate)
            drawn = max(0.0, min(want, tokens))
            conn.execute(
                _shared.update()
                .where(_shared.c.key_id == key_id)
                .values(tokens=tokens - drawn, stamp=now)
            )
        return drawn

    def _prune(self) -> None:
        self._pruned = now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(_shared.delete().where(_shared.c.key_id.startswith(PER_ADDRESS),
                                                _shared.c.stamp < now - IDLE_SECONDS))  # fmt: skip

    def close(self) -> None:
        self.engine.dispose()


def buckets_for(url: str) -> Buckets:
    """In memory without a URL; else shared through the database at the URL."""
    return SharedBuckets(url) if url else LocalBuckets()
