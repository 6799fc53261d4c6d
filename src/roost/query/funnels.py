"""Funnels: how many people went through ordered steps, each within a window of the first.

    {"steps": ["Product Viewed", ["is", "page", ["/checkout"]], "Order Completed"],
     "window": "1d", "mode": "loose", "date_range": "30d", "timezone": "UTC", "filters": [...]}

A step is an event name or a Stats API filter. A person reaches step k if, after an event
of step 1, they did steps 2…k in that order, each before the window (counted from step 1)
closed. `loose` allows other events between the steps; `strict` wants each step to be the
person's very next event. People are the Stats API's `users` (ids linked by identify/alias
are one person). For each start the earliest next step is taken, which leaves the most room
for the rest, and a person counts once at the deepest step any start reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roost.errors import BadRequest
from roost.query import stats
from roost.storage.warehouse.flavor import Flavor

MODES = ("loose", "strict")
MAX_STEPS = 8
_WINDOW = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Funnel:
    scope: stats.StatsQuery  # the date range, time zone and filters every step shares
    steps: list[Any]  # parsed filters
    labels: list[str]
    window_seconds: int
    mode: str


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def parse(body: Any, now: datetime) -> Funnel:
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object with steps")
    unknown = sorted(set(body) - {"steps", "window", "mode", "date_range", "timezone", "filters"})
    if unknown:
        raise _bad(unknown[0], "is not a field of a funnel")
    scope = stats.parse(
        {
            "metrics": ["users"],
            **{k: body[k] for k in ("date_range", "timezone", "filters") if k in body},
        },
        now,
    )
    raw = body.get("steps")
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_STEPS:
        raise _bad("steps", f"must be a list of 2 to {MAX_STEPS} steps")
    steps, labels = [], []
    for i, step in enumerate(raw):
        if isinstance(step, str) and step:
            steps.append(stats.parse_filter(["is", "event", [step]], f"steps[{i}]", None))
            labels.append(step)
        elif isinstance(step, list):
            steps.append(stats.parse_filter(step, f"steps[{i}]", None, visits=False))
            labels.append(" ".join(str(part) for part in step))
        else:
            raise _bad(
                f"steps[{i}]", 'must be an event name or a filter such as ["is", "page", ["/"]]'
            )
    window = body.get("window", "1d")
    if isinstance(window, int) and not isinstance(window, bool) and window > 0:
        seconds = window
    elif isinstance(window, str) and (match := _WINDOW.match(window)) and int(match.group(1)) > 0:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise _bad("window", 'must be seconds (a whole number above 0) or like "30m", "12h", "7d"')
    mode = body.get("mode", "loose")
    if mode not in MODES:
        raise _bad("mode", f"must be one of {', '.join(MODES)}")
    return Funnel(scope, steps, labels, seconds, mode)


def build(f: Funnel, project_id: int, flavor: Flavor, dropped_at: int | None = None) -> str:
    """One row: how many people reached each step (r0, r1, …) and the average seconds to
    convert; with `dropped_at` k, the people (`person`) who reached step k (from 0) but not
    the next."""
    base = stats.base_relation(f.scope, project_id, flavor, f.scope.filters, people=True)
    tests = [stats.condition(condition, f.scope, flavor) for condition in f.steps]
    # Loose order needs only the step events' order among themselves: just those (a fraction
    # of the events); strict order must see every event in between.
    only = "" if f.mode == "strict" else f" WHERE {' OR '.join(f'({t})' for t in tests)}"
    return flavor.funnel(
        f"{base} AS b{only}", tests, f.window_seconds, f.mode == "strict", dropped_at
    )


def shape(f: Funnel, row: list[Any]) -> dict[str, Any]:
    people = [int(v or 0) for v in row[: len(f.steps)]]
    seconds = row[len(f.steps)] if len(row) > len(f.steps) else None
    first = people[0]
    steps = [
        {
            "step": k + 1,
            "label": f.labels[k],
            "people": n,
            "conversion": round(100.0 * n / first, 2) if first else 0.0,
            "from_previous": round(100.0 * n / people[k - 1], 2)
            if k and people[k - 1]
            else (100.0 if k == 0 and n else 0.0),
            "dropped": people[k - 1] - n if k else 0,
        }
        for k, n in enumerate(people)
    ]
    return {
        "steps": steps,
        # of those who reached the last step: the average of each one's quickest way there
        "avg_seconds_to_convert": None if seconds is None else round(float(seconds), 1),
        "query": {
            "window_seconds": f.window_seconds,
            "mode": f.mode,
            **f.scope.stated(),
        },
    }
