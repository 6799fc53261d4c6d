"""Budget: each workspace's monthly event budget, counted exactly.

Usage is counted in stored events. It starts each month (and each process) from the
Warehouse's own count, so it survives restarts; a request reserves what it may store, and
`settle` gives back what was not stored (refused later, deduplicated, or a failed commit).
When usage crosses 80% and 100% of the budget a notice goes to `on_notice` (roost/consumers/notices.py
sends it, once per month and threshold) and is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from roost import metrics
from roost.errors import BudgetExceeded
from roost.model import Event, Reason
from roost.pipeline.batch import Batch, Refusal, Verdict

NOTICE_THRESHOLDS = (80, 100)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


class Usage:
    """Events stored per workspace this month; loaded once from the Warehouse, then counted."""

    def __init__(
        self,
        load: Callable[[int, datetime], int],
        clock: Callable[[], datetime],
        on_notice: Callable[[int, str, int, int, int], None] | None = None,
    ) -> None:
        self.load = load
        self.clock = clock
        self.on_notice = on_notice  # (workspace id, month, threshold, used, budget)
        self.counts: dict[tuple[int, str], int] = {}
        self.noticed: set[tuple[int, str, int]] = set()

    def _slot(self, workspace_id: int) -> tuple[int, str]:
        now = self.clock()
        slot = (workspace_id, now.strftime("%Y-%m"))
        if slot not in self.counts:
            self.counts[slot] = self.load(workspace_id, month_start(now))
        return slot

    def used(self, workspace_id: int) -> int:
        return self.counts[self._slot(workspace_id)]

    def add(self, workspace_id: int, n: int) -> None:
        slot = self._slot(workspace_id)
        self.counts[slot] += n

    def notice(self, workspace_id: int, budget: int) -> None:
        slot = self._slot(workspace_id)
        used = self.counts[slot]
        for threshold in NOTICE_THRESHOLDS:
            mark = (workspace_id, slot[1], threshold)
            if used * 100 >= budget * threshold and mark not in self.noticed:
                self.noticed.add(mark)
                metrics.BUDGET_NOTICES.labels(str(workspace_id), str(threshold)).inc()
                if self.on_notice is not None:
                    self.on_notice(workspace_id, slot[1], threshold, used, budget)


class Budget:
    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    def __call__(self, batch: Batch) -> None:
        key = batch.project_key
        if key.monthly_budget is None or not batch.events:
            return
        remaining = key.monthly_budget - self.usage.used(key.workspace_id)
        resets = next_month(self.usage.clock())
        if remaining <= 0:
            wait = int((resets - self.usage.clock()).total_seconds()) + 1
            raise BudgetExceeded(
                f"the workspace's monthly budget of {key.monthly_budget} events is spent; "
                f"it resets on {resets.date().isoformat()}",
                rejected=batch.parsed.total,
                retry_after=wait,
            )
        if len(batch.events) > remaining:
            allowed = {id(e) for e in batch.events[:remaining]}
            message = f"the workspace's monthly budget of {key.monthly_budget} events is spent"

            def verdict(index: int, event: Event) -> Verdict:
                return (
                    None if id(event) in allowed else Refusal(Reason.TIER_LIMIT, message, None, 429)
                )

            batch.keep(verdict)
        batch.notes["budget"] = len(batch.events)
        self.usage.add(key.workspace_id, len(batch.events))

    def settle(self, batch: Batch, stored: bool) -> None:
        reserved = batch.notes.get("budget")
        if reserved is None:
            return
        key = batch.project_key
        actual = len(batch.events) if stored else 0
        self.usage.add(key.workspace_id, actual - reserved)
        if key.monthly_budget is not None:
            self.usage.notice(key.workspace_id, key.monthly_budget)
