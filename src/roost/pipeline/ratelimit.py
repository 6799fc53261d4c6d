"""Rate limit: a token bucket per key (events per second plus a burst).

A request takes as many tokens as it has events. It goes through when the bucket holds at
least min(events, burst) tokens, and may leave the bucket in debt, so a batch larger than
the burst is not refused forever while the average rate still holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from roost.errors import RateLimited
from roost.pipeline.batch import Batch

# Plan defaults (API.md): events per second, burst. Enterprise is configured (0 = unlimited).
PLAN_LIMITS: dict[str, tuple[float, float]] = {"free": (100.0, 500.0), "pro": (1000.0, 5000.0)}


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


class RateLimit:
    def __init__(
        self,
        enterprise: tuple[float, float] = (0.0, 0.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {**PLAN_LIMITS, "enterprise": enterprise}
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def limits_for(self, plan: str, rate: float | None, burst: float | None) -> tuple[float, float]:
        default_rate, default_burst = self.limits.get(plan, (0.0, 0.0))
        rate = rate if rate is not None else default_rate
        burst = burst if burst is not None else (default_burst or rate * 5)
        return rate, max(burst, 1.0) if rate > 0 else 0.0

    def __call__(self, batch: Batch) -> None:
        key = batch.project_key
        rate, burst = self.limits_for(key.plan, key.rate, key.burst)
        if rate <= 0 or not batch.events:
            return
        now = self.clock()
        bucket = self.buckets.get(key.id)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = self.buckets[key.id] = Bucket(rate, burst, now)
        wait = bucket.take(len(batch.events), now)
        if wait > 0:
            raise RateLimited(
                f"rate limit of {rate:g} events/s (burst {burst:g}) exceeded for this key",
                retry_after=max(1, math.ceil(wait)),
            )
