"""Every report Roost answers, in one table: the HTTP API, the dashboard and the API's
description (OpenAPI) all read it, so a report added here is served, shown and documented.

A report is three pure steps: `parse` checks a request body (naming the field and the rule of
anything wrong), `build` writes its SQL in a Warehouse's flavour, `shape` turns the rows into
the answer. Running the SQL is the caller's (web/api/stats.py), on the query threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roost.query import funnels, game, retention, stats
from roost.storage.warehouse import QueryResult
from roost.storage.warehouse.flavor import INTERVALS, Flavor


@dataclass(frozen=True)
class Report:
    kind: str
    path: str  # where the API answers it (POST, a read key)
    summary: str
    body: dict[str, Any]  # its request as JSON Schema, for the API's description
    parse: Callable[[Any, datetime], Any]
    build: Callable[[Any, int, Flavor], str]
    shape: Callable[[Any, QueryResult], dict[str, Any]]


# The request bodies as JSON Schema, from the constants the parsers check against: the
# parsers remain the authority (and name the field and rule of anything wrong).
_FILTER = {
    "type": "array",
    "description": '["is"|"is_not"|"contains"|"matches", dimension, [values]], or '
    '["and"|"or", [filters]], or ["not", filter]',
    "prefixItems": [{"enum": [*stats.FILTER_OPS, "and", "or", "not"]}],
}
_SCOPE = {
    "date_range": {
        "description": "day, 7d, 30d, month, 6mo, 12mo, year, all, a number and d or mo, or "
        "[start, end] dates",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    },
    "timezone": {"type": "string", "description": "IANA name; default UTC"},
    "filters": {"type": "array", "items": _FILTER},
}
_DIMENSIONS = sorted(
    {*stats.COLUMNS, *stats.ALIASES, *(f"time:{i}" for i in INTERVALS), "props:<name>"}
)
_QUERY = {
    "type": "object",
    "required": ["metrics"],
    "properties": {
        "metrics": {"type": "array", "items": {"enum": list(stats.METRICS)}},
        "dimensions": {"type": "array", "items": {"type": "string"}, "examples": [_DIMENSIONS]},
        **_SCOPE,
        "order_by": {"type": "array", "items": {"type": "array"}},
        "limit": {"type": "integer", "minimum": 1, "maximum": stats.MAX_LIMIT},
        "page": {"type": "integer", "minimum": 1},
    },
}
_FUNNEL_STEPS = {
    "type": "array",
    "minItems": 2,
    "maxItems": funnels.MAX_STEPS,
    "items": {"anyOf": [{"type": "string"}, _FILTER]},
}
_WINDOW = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
_FUNNEL = {
    "type": "object",
    "required": ["steps"],
    "properties": {
        "steps": _FUNNEL_STEPS,
        "window": _WINDOW,
        "mode": {"enum": list(funnels.MODES)},
        **_SCOPE,
    },
    "additionalProperties": False,
}
_RETENTION = {
    "type": "object",
    "properties": {
        "period": {"enum": list(retention.PERIODS)},
        "periods": {"type": "integer", "minimum": 1, "maximum": retention.MAX_PERIODS},
        "start": _FILTER,
        "return": _FILTER,
        **_SCOPE,
    },
    "additionalProperties": False,
}

BUILDS_BODY = {  # query/builds.py: not one SQL, so not a Report; its body described here
    "type": "object",
    "required": ["builds"],
    "properties": {
        "builds": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2,
                   "description": "[earlier, later]"},
        "funnel": {"type": "object", "properties": {
            "steps": _FUNNEL_STEPS, "window": _WINDOW, "mode": {"enum": list(funnels.MODES)},
        }, "additionalProperties": False},
        **_SCOPE,
    },
    "additionalProperties": False,
}  # fmt: skip


def _game(kind: str, summary: str) -> Report:
    by = (
        [*game.GROUPABLE, *(f"time:{i}" for i in INTERVALS)]
        if kind in game.TIMED
        else game.GROUPABLE
    )
    body = {
        "type": "object",
        "properties": {
            "by": {"type": "array", "items": {"enum": list(by)}},
            "limit": {"type": "integer", "minimum": 1, "maximum": stats.MAX_LIMIT},
            **_SCOPE,
        },
        "additionalProperties": False,
    }
    return Report(
        kind,
        f"/api/v1/reports/{kind}",
        summary,
        body,
        lambda body, now: game.parse(kind, body, now),
        game.build,
        lambda parsed, result: game.shape(parsed, result.columns, result.rows),
    )


REPORTS: dict[str, Report] = {
    report.kind: report
    for report in (
        Report(
            "query",
            "/api/v1/query",
            "The Stats API: metrics by dimensions over a date range, with filters.",
            _QUERY,
            stats.parse,
            stats.build,
            lambda parsed, result: stats.shape(parsed, result.rows),
        ),
        Report(
            "funnel",
            "/api/v1/reports/funnel",
            "How many people did each step in order, within a window.",
            _FUNNEL,
            funnels.parse,
            funnels.build,
            lambda parsed, result: funnels.shape(parsed, result.rows[0]),
        ),
        Report(
            "retention",
            "/api/v1/reports/retention",
            "Of the people who started in each period, how many came back in later ones.",
            _RETENTION,
            retention.parse,
            retention.build,
            lambda parsed, result: retention.shape(parsed, result.rows),
        ),
        _game("sessions", "Game sessions: count, length and events per session."),
        _game("errors", "Errors grouped by signature, with the builds they occur in."),
        _game("runs", "Run analytics: starts, completes, fails and their rates."),
        _game("resources", "Resource flows: sources, sinks and net per currency."),
        _game("players", "Players (people with game events) and how many are new (first seen)."),
    )
}
MAX_ROWS = stats.MAX_LIMIT
