"""Build over build: what changed between two builds (or app versions) — the error
signatures new in the later build and gone from it, and per run and per funnel step the
change in completion with a significance test, so a release's regressions show the day it
ships.

    {"builds": ["1.4.0", "1.5.0"], "date_range": "30d", "timezone": "UTC", "filters": [...],
     "funnel": {"steps": ["Level Started", "Level Completed"], "window": "1h"}}

It is made of the other reports (sessions, players, errors, runs, funnel), each asked once per
build with `["is", "build", [b]]` added to the filters: `asks` lists them, the caller runs
them (web/api/stats.py), `combine` compares. `build` is the game dialect's `build_version` and
a Segment event's `context.app.version` (or `.build`).

The test is the two-sided two-proportion z-test with a pooled variance. Its normal
approximation needs enough on each side: a change counts as `significant` only when p < 0.05
and each build has at least MIN_CELL successes and MIN_CELL failures; the p-value is given
either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roost.errors import BadRequest
from roost.query import funnels, stats

ALPHA = 0.05
MIN_CELL = 5
LIMIT = stats.MAX_LIMIT  # runs and error signatures per build
SCOPE = ("date_range", "timezone", "filters")
REPORTS = ("sessions", "players", "errors", "runs")  # asked per build, then the funnel
NONE: dict[str, Any] = {"results": []}  # a report not asked


@dataclass(frozen=True)
class BuildDiff:
    before: str
    after: str
    scope: dict[str, Any]  # date_range, timezone, filters as asked
    funnel: dict[str, Any] | None  # steps, window, mode as asked
    reports: tuple[str, ...] = REPORTS  # of REPORTS, those to compare (a page may want fewer)


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def parse(body: Any, now: datetime, reports: tuple[str, ...] = REPORTS) -> BuildDiff:
    if not isinstance(body, dict):
        raise _bad("body", 'must be a JSON object with "builds": [earlier, later]')
    unknown = sorted(set(body) - {"builds", "funnel", *SCOPE})
    if unknown:
        raise _bad(unknown[0], "is not a field of a build comparison")
    builds = body.get("builds")
    if (
        not isinstance(builds, list)
        or len(builds) != 2
        or not all(isinstance(b, str) and b for b in builds)
        or builds[0] == builds[1]
    ):
        raise _bad("builds", "must be two different builds, [earlier, later]")
    scope = {k: body[k] for k in SCOPE if k in body}
    stats.parse({"metrics": ["events"], **scope}, now)  # names the field of anything wrong
    funnel = body.get("funnel")
    if funnel is not None:
        if not isinstance(funnel, dict):
            raise _bad("funnel", "must be a funnel: {steps, window, mode}")
        inside = sorted(set(funnel) - {"steps", "window", "mode"})
        if inside:
            raise _bad(f"funnel.{inside[0]}", "is not a field of the compared funnel")
        try:
            funnels.parse({**funnel, **scope}, now)
        except BadRequest as e:
            raise _bad(f"funnel.{e.field}", str(e).split(": ", 1)[-1]) from None
    return BuildDiff(builds[0], builds[1], scope, funnel, reports)


def asks(d: BuildDiff) -> list[tuple[str, dict[str, Any]]]:
    """The reports to run, the earlier build's first: `d.reports` (and the funnel) per build."""
    found: list[tuple[str, dict[str, Any]]] = []
    for build in (d.before, d.after):
        scope = {**d.scope, "filters": [*d.scope.get("filters", []), ["is", "build", [build]]]}
        found += [(kind, {**scope, "limit": LIMIT} if kind in ("errors", "runs") else scope)
                  for kind in d.reports]  # fmt: skip
        if d.funnel is not None:
            found.append(("funnel", {**d.funnel, **scope}))
    return found


def p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value that x1/n1 and x2/n2 are one proportion (None: not proportions)."""
    if not n1 or not n2 or not 0 <= x1 <= n1 or not 0 <= x2 <= n2:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # all or none on both sides: no difference to test
        return 1.0
    z = (x2 / n2 - x1 / n1) / se
    return math.erfc(abs(z) / math.sqrt(2))


def compared(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    """A proportion on each side, the change in percentage points and its test."""
    p = p_value(x1, n1, x2, n2)
    rate1 = round(100.0 * x1 / n1, 2) if n1 else None
    rate2 = round(100.0 * x2 / n2, 2) if n2 else None
    enough = p is not None and min(x1, n1 - x1, x2, n2 - x2) >= MIN_CELL
    return {
        "before": rate1,
        "after": rate2,
        "change": None if rate1 is None or rate2 is None else round(rate2 - rate1, 2),
        "p_value": None if p is None else round(p, 4),
        "significant": bool(enough and p is not None and p < ALPHA),
    }


def _errors(
    before: list[dict[str, Any]], after: list[dict[str, Any]], players: list[int]
) -> dict[str, Any]:
    """New, resolved and changed signatures; a change is in the share of players hit."""
    old = {e["signature"]: e for e in before}
    new = {e["signature"]: e for e in after}

    def one(e: dict[str, Any], of: int) -> dict[str, Any]:
        return {"signature": e["signature"], "name": e["name"], "occurrences": e["occurrences"],
                "players": e["players"],
                "share_of_players": round(100.0 * e["players"] / of, 2) if of else None}  # fmt: skip

    changed = []
    for signature in sorted(old.keys() & new.keys()):
        a, b = old[signature], new[signature]
        changed.append({
            "signature": signature, "name": b["name"],
            "occurrences": [a["occurrences"], b["occurrences"]],
            "players": [a["players"], b["players"]],
            "share_of_players": compared(a["players"], players[0], b["players"], players[1]),
        })  # fmt: skip
    return {
        "new": [one(e, players[1]) for s, e in new.items() if s not in old],
        "resolved": [one(e, players[0]) for s, e in old.items() if s not in new],
        "changed": changed,
    }


def _runs(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = {r["subject"]: r for r in before}
    new = {r["subject"]: r for r in after}
    runs = []
    for subject in sorted(old.keys() | new.keys()):
        a, b = old.get(subject), new.get(subject)
        counts = [(r["starts"], r["completes"]) if r else (0, 0) for r in (a, b)]
        (s1, c1), (s2, c2) = counts
        runs.append({"run": subject, "starts": [s1, s2], "completes": [c1, c2],
                     "completion": compared(c1, s1, c2, s2)})  # fmt: skip
    return runs


def _funnel(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Per step, its people and the conversion from the step before (the first step: the
    people who began)."""
    steps = []
    for k, (a, b) in enumerate(zip(before["steps"], after["steps"], strict=True)):
        entry: dict[str, Any] = {"step": a["step"], "label": a["label"],
                                 "people": [a["people"], b["people"]]}  # fmt: skip
        if k:
            was = (before["steps"][k - 1]["people"], after["steps"][k - 1]["people"])
            entry["from_previous"] = compared(a["people"], was[0], b["people"], was[1])
        steps.append(entry)
    return steps


def combine(d: BuildDiff, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison from `asks`' answers, in their order."""
    names = (*d.reports, "funnel") if d.funnel else d.reports
    per = len(names)
    sides = [dict(zip(names, answers[i * per : (i + 1) * per], strict=True)) for i in (0, 1)]

    def first(side: dict[str, Any], kind: str) -> dict[str, Any]:
        found = side.get(kind, NONE)["results"]
        return found[0] if found else {}

    def rows(side: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        return list(side.get(kind, NONE)["results"])

    players = [int(first(side, "players").get("players") or 0) for side in sides]
    summary = []
    for build, side, people in zip((d.before, d.after), sides, players, strict=True):
        sessions = first(side, "sessions")
        summary.append({
            "build": build, "sessions": sessions.get("sessions", 0),
            "avg_duration": sessions.get("avg_duration"), "avg_events": sessions.get("avg_events"),
            "players": people, "error_signatures": len(rows(side, "errors")),
        })  # fmt: skip
    complete = all(len(rows(side, k)) < LIMIT for side in sides for k in ("errors", "runs"))
    return {
        "builds": summary,
        "errors": _errors(rows(sides[0], "errors"), rows(sides[1], "errors"), players),
        "runs": _runs(rows(sides[0], "runs"), rows(sides[1], "runs")),
        "funnel": _funnel(sides[0]["funnel"], sides[1]["funnel"]) if d.funnel else None,
        "complete": complete,  # false: a build had LIMIT signatures or runs, more not compared
        "test": f"two-proportion z-test, significant at p < {ALPHA} with at least "
        f"{MIN_CELL} successes and failures on each side",
        "query": {
            "builds": [d.before, d.after],
            **d.scope,
            **({"funnel": d.funnel} if d.funnel else {}),
        },
    }
