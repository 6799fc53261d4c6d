"""Rate limit: a token bucket per key (events per second plus a burst), and beside it an
hourly one (events per hour; its burst is the hour's allowance) where the key or its plan
sets one. A request goes through only when both grant it.

A request takes as many tokens as it has events. It goes through when the bucket holds at
least min(events, burst) tokens, and may leave the bucket in debt, so a batch larger than
the burst is not refused forever while the average rate still holds.

One node keeps its buckets in memory (LocalBuckets). Several ingest nodes share them
(`rate_limit_url`, storage/metadata/buckets.py); either way the stage is handed its `Buckets`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from roost.errors import RateLimited
from roost.pipeline.batch import Batch

# Plan defaults (docs/wire-contracts.md): events per second, burst; and per hour (the web analytics
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


MAX_BUCKETS = 100_000  # per process: key-less trackers have one per client address


class LocalBuckets:
    """This process's own buckets (one node)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, most: int = MAX_BUCKETS
    ) -> None:
        self.clock = clock
        self.most = most
        self.buckets: dict[str, Bucket] = {}

    def take(self, key_id: str, rate: float, burst: float, n: int) -> float:
        now = self.clock()
        bucket = self.buckets.get(key_id)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            if bucket is None and len(self.buckets) >= self.most:
                self._forget(now)
            bucket = self.buckets[key_id] = Bucket(rate, burst, now)
        return bucket.take(n, now)

    def _forget(self, now: float) -> None:
        """Drop the buckets that have filled up again (a new one starts full: nothing is
        lost); if every one is still draining — many addresses at once — the older half."""
        full = [
            k for k, b in self.buckets.items() if b.tokens + (now - b.stamp) * b.rate >= b.burst
        ]
        if len(full) < self.most // 10:
            by_age = sorted(self.buckets, key=lambda k: self.buckets[k].stamp)
            full = by_age[: len(by_age) // 2]
        for key in full:
            del self.buckets[key]

    def give(self, key_id: str, n: int) -> None:
        bucket = self.buckets.get(key_id)
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + n)


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
