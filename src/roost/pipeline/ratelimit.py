"""Rate limit: a token bucket per key (events per second plus a burst), and beside it an
hourly one (events per hour; its burst is the hour's allowance) where the key or its plan
sets one. A request goes through only when both grant it.

A request takes as many tokens as it has events. It goes through when the bucket holds at
least min(events, burst) tokens, and may leave the bucket in debt, so a batch larger than
the burst is not refused forever while the average rate still holds.

One node keeps its buckets in memory. Several ingest nodes share them (`rate_limit_url`):
the bucket lives in a database row and each node draws on it in slices of a tenth of a
second's tokens, kept locally, so a node asks the database about ten times a second per busy
key rather than once per request, and all nodes together admit the key's rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa

from roost.errors import RateLimited
from roost.pipeline.batch import Batch
from roost.storage.metadata import create_tables

# Plan defaults (API.md): events per second, burst; and per hour (the web analytics
# document's tiers). Enterprise is configured (0 = unlimited).
PLAN_LIMITS: dict[str, tuple[float, float]] = {"free": (100.0, 500.0), "pro": (1000.0, 5000.0)}
PLAN_HOURLY: dict[str, float] = {"free": 1000.0, "pro": 10000.0}


class Bucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, n: int, now: float) -> float:
        """Take n tokens; return 0 if granted, else the seconds to wait."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(float(n), self.burst)
        if self.tokens >= need:
            self.tokens -= n
            return 0.0
        return (need - self.tokens) / self.rate


class Buckets(Protocol):
    def take(self, key_id: str, rate: float, burst: float, n: int) -> float:
        """Take n tokens from the key's bucket; 0 if granted, else the seconds to wait."""
        ...

    def give(self, key_id: str, n: int) -> None:
        """Return n tokens taken for a request another window refused."""
        ...


class LocalBuckets:
    """This process's own buckets (one node)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def take(self, key_id: str, rate: float, burst: float, n: int) -> float:
        now = self.clock()
        bucket = self.buckets.get(key_id)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = self.buckets[key_id] = Bucket(rate, burst, now)
        return bucket.take(n, now)

    def give(self, key_id: str, n: int) -> None:
        bucket = self.buckets.get(key_id)
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + n)


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

    def take(self, key_id: str, rate: float, burst: float, n: int) -> float:
        need = min(float(n), burst)
        with self._lock:
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

    def close(self) -> None:
        self.engine.dispose()


def buckets_for(url: str) -> Buckets:
    """In memory without a URL; else shared through the database at the URL."""
    return SharedBuckets(url) if url else LocalBuckets()


class RateLimit:
    def __init__(
        self,
        enterprise: tuple[float, float] = (0.0, 0.0),
        buckets: Buckets | None = None,
        enterprise_hourly: float = 0.0,
    ) -> None:
        self.limits = {**PLAN_LIMITS, "enterprise": enterprise}
        self.hourly = {**PLAN_HOURLY, "enterprise": enterprise_hourly}
        self.buckets = buckets or LocalBuckets()

    def limits_for(self, plan: str, rate: float | None, burst: float | None) -> tuple[float, float]:
        default_rate, default_burst = self.limits.get(plan, (0.0, 0.0))
        rate = rate if rate is not None else default_rate
        burst = burst if burst is not None else (default_burst or rate * 5)
        return rate, max(burst, 1.0) if rate > 0 else 0.0

    def hourly_for(self, plan: str, hourly: float | None) -> float:
        """Events per hour (0: no hourly window)."""
        return hourly if hourly is not None else self.hourly.get(plan, 0.0)

    def __call__(self, batch: Batch) -> None:
        key = batch.project_key
        n = len(batch.events)
        if not n:
            return
        rate, burst = self.limits_for(key.plan, key.rate, key.burst)
        taken: list[str] = []
        if rate > 0:
            wait = self.buckets.take(str(key.id), rate, burst, n)
            if wait > 0:
                raise RateLimited(
                    f"rate limit of {rate:g} events/s (burst {burst:g}) exceeded for this key",
                    retry_after=max(1, math.ceil(wait)),
                )
            taken.append(str(key.id))
        hourly = self.hourly_for(key.plan, key.hourly)
        if hourly > 0:
            wait = self.buckets.take(f"{key.id}:hour", hourly / 3600, hourly, n)
            if wait > 0:
                for bucket in taken:  # the other window's tokens were not used
                    self.buckets.give(bucket, n)
                raise RateLimited(
                    f"rate limit of {hourly:g} events per hour exceeded for this key",
                    retry_after=max(1, math.ceil(wait)),
                )
