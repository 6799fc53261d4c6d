"""The Stats API's one query shape (after Plausible's Stats API v2), checked and turned into SQL.

    {"metrics": ["events", "visitors"], "dimensions": ["event", "time:day"],
     "filters": [["is", "country", ["DE", "FR"]], ["contains", "page", ["/blog"]]],
     "date_range": "7d", "timezone": "Europe/Berlin",
     "order_by": [["events", "desc"]], "limit": 100, "page": 1}

`parse` checks a request and names the field and the rule of anything wrong; `build` writes
the SQL through a Warehouse's `Flavor`, so the same report runs on every backend; `shape`
turns the rows into the answer. Times are the events' `timestamp`, stored in UTC; date
ranges and time buckets are in the query's time zone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from roost import patterns
from roost.dialects.clock import STORABLE
from roost.errors import BadRequest
from roost.query import rollup
from roost.query.rollup import NOT_BOT
from roost.storage.warehouse.flavor import INTERVALS, Flavor
from roost.storage.warehouse.schema import VISIT_GAP_SECONDS

SIMPLE = {  # one aggregate over the matching events
    "events": "count(*)",
    "users": "count(DISTINCT person)",
    "visitors": f"count(DISTINCT CASE WHEN {NOT_BOT} THEN visitor END)",
    # count(CASE …) rather than sum(CASE … 1 ELSE 0): DuckDB 2.0 may type such a sum too small
    "pageviews": f"count(CASE WHEN type = 'page' AND {NOT_BOT} THEN 1 END)",
    "sessions": "count(DISTINCT session_id)",
    "value_sum": "sum(value)",
    "value_avg": "avg(value)",
}
VISITS = ("visits", "views_per_visit", "bounce_rate", "visit_duration")
# `build`'s parts counted from last-seen rows (query/rollup.py), by the metric
SEEN_PARTS = {"users": "u", "visitors": "w", "sessions": "n"}
METRICS = (*SIMPLE, *VISITS, "session_duration", "conversion_rate")
COLUMNS = {  # dimension → stored column
    "event": "event", "type": "type", "category": "category", "page": "path", "url": "url",
    "hostname": "host", "source": "source", "referrer": "referrer",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "utm_term": "utm_term", "utm_content": "utm_content", "country": "country",
    "browser": "browser", "os": "os", "device": "device", "build": "build",
    "dim1": "dim1", "dim2": "dim2", "dim3": "dim3", "user": "person", "session": "session_id",
}  # fmt: skip
VISIT_COLUMNS = {  # dimension → a column of the visits (what each visit began with)
    "entry_page": "entry_page", "exit_page": "exit_page",
    **{f"visit:{name}": name for name in (
        "entry_page", "exit_page", "source", "referrer", "utm_source", "utm_medium",
        "utm_campaign", "utm_term", "utm_content", "country", "browser", "os", "device")},
    "visit:country_name": "country", "visit:hostname": "host",
}  # fmt: skip
ALIASES = {  # Plausible's names for the same dimensions
    "event:name": "event", "event:page": "page", "event:hostname": "hostname",
}  # fmt: skip
# what a query by visit dimensions counts: each visit (a row of Flavor.visits_of) once
PER_VISIT = {
    "visitors": "count(DISTINCT visitor)",
    "visits": "count(*)",
    "events": "coalesce(sum(events), 0)",
    "pageviews": "coalesce(sum(pageviews), 0)",
    "views_per_visit": "CASE WHEN count(*) > 0 THEN 1.0 * sum(pageviews) / count(*) END",
    "bounce_rate": "CASE WHEN count(*) > 0 "
                   "THEN 100.0 * count(CASE WHEN events = 1 THEN 1 END) / count(*) END",
    "visit_duration": "CASE WHEN count(*) > 0 THEN sum({micros}) / 1000000.0 / count(*) END",
}  # fmt: skip
FILTER_OPS = ("is", "is_not", "contains", "matches")
MAX_LIMIT = 10000
_RELATIVE = re.compile(r"^(\d{1,4})(d|mo)$")


@dataclass(frozen=True)
class Dimension:
    name: str  # as the client wrote it
    kind: str  # "column", "prop", "time", "visit", "run"
    arg: str  # the column (of the events, or of the visits), the property key, or the interval


@dataclass(frozen=True)
class StatsQuery:
    metrics: list[str]
    dimensions: list[Dimension]
    filters: list[Any]  # parsed: ("op", Dimension, [values]) or ("and"/"or", [..]) / ("not", f)
    start: datetime  # naive UTC, inclusive
    end: datetime  # naive UTC, exclusive
    first_day: date | None  # the range as local dates, for the answer
    last_day: date | None
    timezone: str
    order_by: list[tuple[str, str]]
    limit: int
    offset: int
    asked: datetime | None = None  # naive UTC: when (query/rollup.py's `seen` reads it)

    def stated(self) -> dict[str, Any]:
        """The date range (local dates, None for open ends) and time zone, as every answer
        states them."""
        return {
            "date_range": [
                self.first_day.isoformat() if self.first_day else None,
                self.last_day.isoformat() if self.last_day else None,
            ],
            "timezone": self.timezone,
        }


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def _dimension(raw: Any, where: str, interval: str | None, time_allowed: bool) -> Dimension:
    if not isinstance(raw, str) or not raw:
        raise _bad(where, "must be a dimension name such as event, country or time:day")
    name = ALIASES.get(raw, raw)
    if name.startswith(("props:", "event:props:")):
        key = name.split("props:", 1)[1]
        if not key:
            raise _bad(where, "props: needs a property name, as in props:plan")
        return Dimension(raw, "prop", key)
    if name == "time" or name.startswith("time:"):
        if not time_allowed:
            raise _bad(where, "time is a dimension, not a filter (use date_range)")
        chosen = name.partition(":")[2] or interval or "day"
        if chosen not in INTERVALS:
            raise _bad(where, f"the interval must be one of {', '.join(INTERVALS)}")
        return Dimension(raw, "time", chosen)
    if name in COLUMNS:
        return Dimension(raw, "column", COLUMNS[name])
    if name in VISIT_COLUMNS:
        return Dimension(raw, "visit", VISIT_COLUMNS[name])
    if name == "run":  # a game run: the subject of progression events (Start:Forest → Forest)
        return Dimension(raw, "run", "event")
    known = ", ".join([*COLUMNS, *VISIT_COLUMNS, "run", "props:<key>", "time:<interval>"])
    raise _bad(where, f"unknown dimension {raw!r} (known: {known})")


def parse_filter(raw: Any, where: str, interval: str | None, visits: bool = True) -> Any:
    """A filter; `visits`: whether it may look at visit dimensions (a test of one event,
    as a funnel's step, may not)."""
    parsed = _parse_filter(raw, where, interval)
    kinds = _kinds(parsed)
    if "visit" in kinds and not visits:
        raise _bad(where, "tests one event: visit dimensions (entry_page, visit:source, …) "
                          "go in the report's filters")  # fmt: skip
    if "visit" in kinds and len(kinds) > 1:
        raise _bad(where, "mixes visit and event dimensions in one and/or/not: "
                          "give them as filters of their own (filters are combined with AND)")  # fmt: skip
    return parsed


def _parse_filter(raw: Any, where: str, interval: str | None) -> Any:
    if not isinstance(raw, list) or not raw:
        raise _bad(
            where, 'must be [op, dimension, [values]], ["and"|"or", [filters]] or ["not", filter]'
        )
    op = raw[0]
    if op in ("and", "or"):
        if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
            raise _bad(where, f'must be ["{op}", [filter, ...]] with at least one filter')
        return (op, [_parse_filter(f, f"{where}[1][{i}]", interval) for i, f in enumerate(raw[1])])
    if op == "not":
        if len(raw) != 2:
            raise _bad(where, 'must be ["not", filter]')
        return ("not", _parse_filter(raw[1], f"{where}[1]", interval))
    if op not in FILTER_OPS:
        raise _bad(f"{where}[0]", f"must be one of {', '.join((*FILTER_OPS, 'and', 'or', 'not'))}")
    if len(raw) != 3:
        raise _bad(where, f'must be ["{op}", dimension, [values]]')
    dimension = _dimension(raw[1], f"{where}[1]", interval, time_allowed=False)
    values = raw[2]
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values)
    ):
        raise _bad(f"{where}[2]", "must be a non-empty list of strings or numbers")
    texts = [str(v) for v in values]
    if op == "matches":
        for i, pattern in enumerate(texts):
            try:
                patterns.compile(pattern)  # what DuckDB and ClickHouse run it with: RE2
            except patterns.PatternError as exc:
                raise _bad(f"{where}[2][{i}]", str(exc)) from None
    return (op, dimension, texts)


FIRST_DAY, LAST_DAY = STORABLE[0].date(), STORABLE[1].date() - timedelta(days=2)


def _day(raw: Any, where: str) -> date:
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise _bad(where, "must be an ISO 8601 date (YYYY-MM-DD)") from None


def _range(raw: Any, today: date) -> tuple[date | None, date | None]:
    """(first, last) local dates, both inclusive; (None, None) for all time."""
    if raw is None:
        raw = "30d"
    if isinstance(raw, list):
        if len(raw) != 2:
            raise _bad("date_range", "must be a shortcut or [start, end]")
        first, last = _day(raw[0], "date_range[0]"), _day(raw[1], "date_range[1]")
        if last < first:
            raise _bad("date_range", "the end comes before the start")
        # what can be stored lies within these (dialects/clock.py): a range past them holds
        # nothing more, and the end of time has no day after it to stop at
        return max(first, FIRST_DAY), min(last, LAST_DAY)
    if raw == "all":
        return None, None
    if raw == "day":
        return today, today
    if raw == "month":
        return today.replace(day=1), today
    if raw == "year":
        return today.replace(month=1, day=1), today
    match = _RELATIVE.match(str(raw))
    if isinstance(raw, str) and match:
        n, unit = int(match.group(1)), match.group(2)
        if n < 1:
            raise _bad("date_range", "the number of days or months must be at least 1")
        if unit == "d":
            return today - timedelta(days=n - 1), today
        months = today.year * 12 + today.month - 1 - (n - 1)
        return date(months // 12, months % 12 + 1, 1), today
    raise _bad(
        "date_range",
        'must be "day", "7d", "30d", "month", "12mo", "year", "all" or ["YYYY-MM-DD", "YYYY-MM-DD"]',
    )


def _utc(day: date, zone: ZoneInfo) -> datetime:
    """The naive UTC instant of local midnight starting `day`."""
    local = datetime.combine(day, time(), tzinfo=zone)
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def parse(body: Any, now: datetime) -> StatsQuery:
    """Check a request; `now` (aware) decides relative date ranges."""
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object with metrics")
    unknown = sorted(
        set(body)
        - {"metrics", "dimensions", "filters", "date_range", "interval", "timezone", "order_by",
           "limit", "page"}
    )  # fmt: skip
    if unknown:
        raise _bad(unknown[0], "is not a field of a query")
    zone_name = body.get("timezone", "UTC")
    try:
        zone = ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(
            "timezone", f"unknown time zone {zone_name!r} (an IANA name such as Europe/Berlin)"
        ) from None
    interval = body.get("interval")
    if interval is not None and interval not in INTERVALS:
        raise _bad("interval", f"must be one of {', '.join(INTERVALS)}")

    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise _bad("metrics", f"must be a non-empty list of {', '.join(METRICS)}")
    for i, metric in enumerate(metrics):
        if metric not in METRICS:
            raise _bad(f"metrics[{i}]", f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if len(set(metrics)) != len(metrics):
        raise _bad("metrics", "each metric at most once")

    raw_dims = body.get("dimensions", [])
    if not isinstance(raw_dims, list):
        raise _bad("dimensions", "must be a list")
    dimensions = [
        _dimension(d, f"dimensions[{i}]", interval, time_allowed=True)
        for i, d in enumerate(raw_dims)
    ]
    if len({d.name for d in dimensions}) != len(dimensions):
        raise _bad("dimensions", "each dimension at most once")
    if interval is not None and not any(d.kind == "time" for d in dimensions):
        dimensions.append(Dimension("time", "time", interval))

    raw_filters = body.get("filters", [])
    if not isinstance(raw_filters, list):
        raise _bad("filters", "must be a list of filters")
    filters = [parse_filter(f, f"filters[{i}]", interval) for i, f in enumerate(raw_filters)]
    if any(d.kind == "visit" for d in dimensions):
        _check_per_visit(metrics, dimensions)
    if "conversion_rate" in metrics and not any(_goal(f) for f in filters):
        raise _bad(
            "metrics",
            'conversion_rate needs a goal: a filter on the event name, as ["is", "event", ["Signup"]]',
        )

    today = now.astimezone(zone).date()
    first, last = _range(body.get("date_range"), today)
    start = _utc(first, zone) if first else datetime(1970, 1, 1)
    end = _utc(last + timedelta(days=1), zone) if last else datetime(9999, 1, 1)

    names = [*metrics, *(d.name for d in dimensions)]
    order: list[tuple[str, str]] = []
    raw_order = body.get("order_by")
    if raw_order is None:
        time_dims = [d.name for d in dimensions if d.kind == "time"]
        order = [(time_dims[0], "asc")] if time_dims else [(metrics[0], "desc")]
    else:
        if not isinstance(raw_order, list):
            raise _bad("order_by", "must be a list of [metric or dimension, asc|desc]")
        for i, item in enumerate(raw_order):
            if (
                not isinstance(item, list)
                or len(item) != 2
                or item[0] not in names
                or item[1] not in ("asc", "desc")
            ):
                raise _bad(
                    f"order_by[{i}]",
                    'must be [a metric or dimension of this query, "asc" or "desc"]',
                )
            order.append((str(item[0]), str(item[1])))

    limit = body.get("limit", MAX_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    page = body.get("page", 1)
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise _bad("page", "must be a whole number from 1")
    return StatsQuery(
        metrics=list(metrics),
        dimensions=dimensions,
        filters=filters,
        start=start,
        end=end,
        first_day=first,
        last_day=last,
        timezone=str(zone_name),
        order_by=order,
        limit=limit,
        offset=(page - 1) * limit,
        asked=now.astimezone(UTC).replace(tzinfo=None),
    )


def _named(f: Any) -> list[Dimension]:
    """The dimensions a filter looks at."""
    if f[0] in ("and", "or"):
        return [d for g in f[1] for d in _named(g)]
    if f[0] == "not":
        return _named(f[1])
    return [f[1]]


def _kinds(f: Any) -> set[str]:
    return {d.kind for d in _named(f)}


def _by_visit(f: Any) -> bool:
    return "visit" in _kinds(f)


def _check_per_visit(metrics: list[str], dimensions: list[Dimension]) -> None:
    """A query by a visit dimension counts visits, each once: it can ask only what a visit
    knows (filters on events keep the visits with a matching event)."""
    for i, metric in enumerate(metrics):
        if metric not in PER_VISIT and metric != "conversion_rate":
            raise _bad(
                f"metrics[{i}]",
                f"{metric} is not counted per visit: a query by visit dimensions asks for "
                f"{', '.join([*PER_VISIT, 'conversion_rate'])}",
            )
    for i, dimension in enumerate(dimensions):
        if dimension.kind not in ("visit", "time"):
            raise _bad(
                f"dimensions[{i}]",
                f"{dimension.name} is a dimension of events, not of visits: a query by visit "
                "dimensions groups by time and visit dimensions only",
            )


def _expression(dimension: Dimension, q: StatsQuery, flavor: Flavor) -> str:
    if dimension.kind in ("column", "visit"):
        return dimension.arg
    if dimension.kind == "prop":
        return flavor.prop("properties", dimension.arg)
    if dimension.kind == "run":
        return f"(CASE WHEN category = 'progression' THEN {flavor.after('event', ':')} END)"
    return flavor.bucket(dimension.arg, flavor.local("timestamp", q.timezone))


def condition(f: Any, q: StatsQuery, flavor: Flavor) -> str:
    op = f[0]
    if op in ("and", "or"):
        return "(" + f" {op.upper()} ".join(condition(g, q, flavor) for g in f[1]) + ")"
    if op == "not":
        return f"(NOT coalesce({condition(f[1], q, flavor)}, 1 = 0))"
    dimension, values = f[1], f[2]
    expression = _expression(dimension, q, flavor)
    literals = [flavor.string(v) for v in values]
    if op == "is":
        return f"({expression} IN ({', '.join(literals)}))"
    if op == "is_not":  # an event without the dimension is not any of the values
        return f"({expression} IS NULL OR {expression} NOT IN ({', '.join(literals)}))"
    test = flavor.contains if op == "contains" else flavor.matches
    return "(" + " OR ".join(f"coalesce({test(expression, v)}, 1 = 0)" for v in literals) + ")"


def _goal(f: Any) -> bool:
    """A top-level filter on the event name: what conversion_rate counts as converting."""
    return f[0] in FILTER_OPS and f[1].kind == "column" and f[1].arg == "event"


def base_relation(
    q: StatsQuery,
    project_id: int,
    flavor: Flavor,
    filters: list[Any],
    *,
    people: bool = False,
    rows: str | None = None,
    counts: Sequence[str] | None = None,
) -> str:
    """The matching events, with each dimension as d0, d1, …, and `person` when `people` (or
    it counts users — of `counts`, the query's metrics unless given — or the query groups or
    filters by them) — or the matching `rows` (presence rows, query/rollup.py) likewise."""
    of_visits = [f for f in filters if _by_visit(f)]
    filters = [f for f in filters if not _by_visit(f)]
    # an Event always has a time, in the storable range: none tested in all time
    times = rollup.in_range(q, flavor, "timestamp", "timestamp")
    where = rollup.where(times, *(condition(f, q, flavor) for f in filters))
    dims = [f"{_expression(d, q, flavor)} AS d{i}" for i, d in enumerate(q.dimensions)]
    # Resolving linked ids is a join over every event: only when the query counts people,
    # or groups or filters by them
    needs_person = (
        people
        or "users" in (q.metrics if counts is None else counts)
        or any(_is_person(d) for d in q.dimensions)
        or any(_names_person(f) for f in filters)
    )
    if rows is not None:
        relation = rows
    elif needs_person:
        relation = flavor.events(project_id)
    else:
        relation = flavor.rows(project_id)
    if of_visits:  # the events of the visits that pass them
        relation = flavor.within_visits(relation, _visits(q, project_id, flavor, of_visits))
    return f"(SELECT {', '.join([*dims, '*'])} FROM {relation} AS events{where})"


def _is_person(dimension: Dimension) -> bool:
    return dimension.kind == "column" and dimension.arg == "person"


def _names_person(f: Any) -> bool:
    return any(_is_person(d) for d in _named(f))


def _visits(
    q: StatsQuery,
    project_id: int,
    flavor: Flavor,
    filters: list[Any],
    since: datetime | None = None,
    dimensions: Sequence[Dimension] = (),
) -> str:
    """The project's visits (those kept, or made from the events) that pass `filters` (on
    visits' columns); `since`: only those that began then or later are asked for, so the
    events made into visits may start a gap before it (one in that gap means the visit it
    joins began earlier); made, they carry only the columns the filters and `dimensions`
    look at (each costs its share of the sort)."""
    rows = flavor.kept_visits(project_id)
    if rows is None:
        after = ""
        if since is not None and since > datetime(1970, 1, 1):
            earliest = since - timedelta(seconds=VISIT_GAP_SECONDS)
            after = f" AND timestamp >= {flavor.timestamp(earliest)}"
        people = (
            f"(SELECT * FROM {flavor.rows(project_id)} AS e "
            f"WHERE visitor IS NOT NULL AND {NOT_BOT}{after})"
        )
        looked_at = {d.arg for d in dimensions if d.kind == "visit"}
        looked_at |= {d.arg for f in filters for d in _named(f) if d.kind == "visit"}
        rows = f"({flavor.visits_of(people, VISIT_GAP_SECONDS, sorted(looked_at))})"
    if not filters:
        return rows
    return f"(SELECT * FROM {rows} AS visits WHERE {' AND '.join(condition(f, q, flavor) for f in filters)})"


def visits_relation(
    q: StatsQuery, project_id: int, flavor: Flavor, filters: list[Any] | None = None
) -> str:
    """The visits that began in the range, pass the filters on visits and have an event
    passing each filter on events (`filters`, q's unless given), with each dimension as d0,
    d1, …"""
    filters = q.filters if filters is None else filters
    where = [rollup.in_range(q, flavor, "timestamp", "timestamp")]
    on_events = [f for f in filters if not _by_visit(f)]
    if on_events:  # the visits (by visitor and start) of the events that pass them
        events = base_relation(replace(q, dimensions=[]), project_id, flavor, on_events)
        matched = flavor.within_visits(events, _visits(q, project_id, flavor, []))
        where.append(
            "(coalesce(visitor, ''), timestamp) IN "
            f"(SELECT DISTINCT visit_key, visit_began FROM {matched} AS matched)"
        )
    of_visits = [f for f in filters if _by_visit(f)]
    rows = _visits(q, project_id, flavor, of_visits, since=q.start, dimensions=q.dimensions)
    dims = [f"{_expression(d, q, flavor)} AS d{i}" for i, d in enumerate(q.dimensions)]
    return f"(SELECT {', '.join([*dims, '*'])} FROM {rows} AS visits{rollup.where(*where)})"


def _per_visit(metric: str, flavor: Flavor) -> str:
    return PER_VISIT[metric].format(micros=flavor.micros("timestamp", "ended"))


def _build_per_visit(q: StatsQuery, project_id: int, flavor: Flavor, keys: list[str]) -> str:
    """Each group of visits' metrics; conversion_rate divides the visitors of those with a
    goal event (the visits the query counts) by the visitors of those matching every other
    filter, grouped alike and stacked as `build` stacks its parts."""
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    counted = [m for m in q.metrics if m != "conversion_rate"]
    if "conversion_rate" in q.metrics and "visitors" not in counted:
        counted.append("visitors")
    visits = visits_relation(q, project_id, flavor)
    if "conversion_rate" not in q.metrics:
        selected = [*keys, *(f"{_per_visit(m, flavor)} AS m{i}" for i, m in enumerate(q.metrics))]
        return f"SELECT {', '.join(selected)} FROM {visits} AS v{group}"
    everyone = visits_relation(q, project_id, flavor, [f for f in q.filters if not _goal(f)])
    values = ", ".join(f"{_per_visit(m, flavor)} AS {m}" for m in counted)
    nulls = ", ".join(f"NULL AS {m}" for m in counted)
    stacked = (
        f"SELECT {', '.join([*keys, values])}, NULL AS all_visitors, 1 AS in_g "
        f"FROM {visits} AS v{group} UNION ALL "
        f"SELECT {', '.join([*keys, nulls])}, count(DISTINCT visitor) AS all_visitors, "
        f"NULL AS in_g FROM {everyone} AS v{group}"
    )
    metric = {m: f"max({m})" for m in counted}
    metric["conversion_rate"] = "100.0 * max(visitors) / max(all_visitors)"
    selected = [*keys, *(f"{metric[m]} AS m{i}" for i, m in enumerate(q.metrics))]
    sql = f"SELECT {', '.join(selected)} FROM ({stacked}) AS parts{group}"
    if keys:
        sql += " HAVING max(in_g) = 1"
    return sql


def build(q: StatsQuery, project_id: int, flavor: Flavor) -> str:
    """One SELECT: the dimensions (d0, d1, …) and metrics (m0, m1, …) of each group.

    Simple metrics are one aggregate of the matching events per group (`g`); visit metrics
    come from the group's visits (`v`, flavor.visits), session_duration from its sessions
    (`s`), conversion_rate from its visitors without the goal filters (`c`), users,
    visitors and sessions from the last-seen rows when they can count them (`u`, `w`, `n`:
    query/rollup.py), each joined to `g` on the dimensions.
    """
    keys = [f"d{i}" for i in range(len(q.dimensions))]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    if any(d.kind == "visit" for d in q.dimensions):
        return _ordered(q, _build_per_visit(q, project_id, flavor, keys), keys)
    wanted = set(q.metrics)
    simple = [m for m in SIMPLE if m in wanted]
    if "views_per_visit" in wanted and "pageviews" not in simple:
        simple.append("pageviews")
    if "conversion_rate" in wanted and "visitors" not in simple:
        simple.append("visitors")
    # users, visitors and sessions by the last-seen rows, if they can: a part of their own,
    # a count of rows, not a distinct count
    kept = {m: rollup.seen(q, project_id, flavor, m) for m in SEEN_PARTS if m in simple}
    seen = {m: relation for m, relation in kept.items() if relation is not None}
    for m in seen:
        simple.remove(m)
    # and per time bucket, with their first times
    spanned = {m: rollup.seen_by_time(q, project_id, flavor, m) for m in SEEN_PARTS if m in simple}
    by_time = {m: relation for m, relation in spanned.items() if relation is not None}
    for m in by_time:
        simple.remove(m)
    if not simple:
        simple.append("events")
    tallied, tally = _tallied(q, project_id, flavor, simple)
    simple = [m for m in simple if m not in tallied]
    # without the identity links' join unless users are counted from it (~160 ms at 10 M)
    base = base_relation(q, project_id, flavor, q.filters, counts=simple)
    # fewer rows, the same answer: an hour's counts, else its presence rows
    rolled_up = rollup.counts(q, project_id, flavor, simple) or rollup.relation(
        q, project_id, flavor, simple
    )
    counted, aggregate = base, SIMPLE
    if rolled_up is not None:
        counted = base_relation(q, project_id, flavor, q.filters, rows=rolled_up)
        aggregate = rollup.METRICS
    parts: dict[str, tuple[list[str], str]] = {  # each part's columns, and its SELECT
        "g": (simple, _per_person(q, project_id, flavor, counted, aggregate, simple) or
              f"SELECT {', '.join([*keys, *(f'{aggregate[m]} AS {m}' for m in simple)])} "
              f"FROM {counted} AS base{group}"),
    }  # fmt: skip
    if tally is not None:
        summed = base_relation(q, project_id, flavor, q.filters, rows=tally)
        parts["t"] = (
            tallied,
            f"SELECT {', '.join([*keys, *(f'{rollup.METRICS[m]} AS {m}' for m in tallied)])} "
            f"FROM {summed} AS base{group}",
        )
    for m, relation in by_time.items():
        rows = rollup.relation(q, project_id, flavor, [m])
        events = base_relation(q, project_id, flavor, q.filters, rows=rows, counts=[m])
        parts[SEEN_PARTS[m]] = ([m], rollup.counted_by_time(q, m, relation, events, flavor))
    for m, relation in seen.items():
        events = base_relation(q, project_id, flavor, q.filters, counts=[m])
        parts[SEEN_PARTS[m]] = ([m], rollup.counted_seen(q, m, relation, events, flavor))
    if wanted & set(VISITS):
        if not all(_by_visit(f) for f in q.filters) or not all(
            d.kind == "time" for d in q.dimensions
        ):
            # the visitors' runs of events within each group and filter (a visit by page: a
            # run of its events on that page)
            people = f"(SELECT * FROM {base} AS base WHERE {NOT_BOT} AND visitor IS NOT NULL)"
            visits = flavor.visits(people, keys, VISIT_GAP_SECONDS)
            counted_visits = (
                f"SELECT {', '.join([*keys, 'visits'])}, "
                "CASE WHEN visits > 0 THEN 100.0 * bounces / visits END AS bounce_rate, "
                "CASE WHEN visits > 0 THEN 1.0 * seconds / visits END AS visit_duration "
                f"FROM ({visits}) AS visits"
            )
        else:  # whole visits, each in the bucket it began in
            counted = ", ".join(
                f"{_per_visit(m, flavor)} AS {m}"
                for m in ("visits", "bounce_rate", "visit_duration")
            )
            counted_visits = (
                f"SELECT {', '.join([*keys, counted])} "
                f"FROM {visits_relation(q, project_id, flavor)} AS v{group}"
            )
        parts["v"] = (["visits", "bounce_rate", "visit_duration"], counted_visits)
    if "session_duration" in wanted:
        by = ", ".join([*keys, "session_id"])
        sessions = (
            f"SELECT {by}, {flavor.seconds('min(timestamp)', 'max(timestamp)')} AS seconds "
            f"FROM {base} AS base WHERE session_id IS NOT NULL GROUP BY {by}"
        )
        parts["s"] = (
            ["session_duration"],
            f"SELECT {', '.join([*keys, 'avg(seconds) AS session_duration'])} "
            f"FROM ({sessions}) AS sessions{group}",
        )
    if "conversion_rate" in wanted:
        parts["c"] = (["all_visitors"], _all_visitors(q, project_id, flavor, keys))
    # A breakdown lists the groups that have what was asked: a track event's NULL page is no
    # row of "pageviews by page" (a time series keeps its empty buckets)
    listed = keys and not any(d.kind == "time" for d in q.dimensions)
    if list(parts) == ["g"]:  # every metric is g's own, one row a group: no second grouping
        selected = [*keys, *(f"{m} AS m{i}" for i, m in enumerate(q.metrics))]
        sql = f"SELECT {', '.join(selected)} FROM ({parts['g'][1]}) AS parts"
        if listed:
            sql += " WHERE " + " OR ".join(f"coalesce({m}, 0) <> 0" for m in q.metrics)
        return _ordered(q, sql, keys)
    metric = {m: f"max({m})" for m in [*simple, *tallied]}
    metric.update(
        users="coalesce(max(users), 0)",
        visitors="coalesce(max(visitors), 0)",
        sessions="coalesce(max(sessions), 0)",
        visits="coalesce(max(visits), 0)",
        views_per_visit="1.0 * max(pageviews) / max(visits)",
        bounce_rate="max(bounce_rate)",
        visit_duration="max(visit_duration)",
        session_duration="max(session_duration)",
        conversion_rate="100.0 * max(visitors) / max(all_visitors)",
    )
    # The parts side by side: stacked (UNION ALL), then grouped by the dimensions, so a NULL
    # dimension meets its NULL in every engine (ClickHouse 18 joins only on `=`); only the
    # groups of `g` are kept, as a join from it would.
    columns = [c for names, _ in parts.values() for c in names]
    stacked = " UNION ALL ".join(
        f"SELECT {', '.join([*keys, *(c if c in names else f'NULL AS {c}' for c in columns)])}, "
        f"{1 if alias == 'g' else 'NULL'} AS in_g FROM ({part}) AS {alias}"
        for alias, (names, part) in parts.items()
    )
    selected = [*keys, *(f"{metric[m]} AS m{i}" for i, m in enumerate(q.metrics))]
    sql = f"SELECT {', '.join(selected)} FROM ({stacked}) AS parts"
    if keys:
        sql += f"{group} HAVING max(in_g) = 1"
    if listed:
        sql += " AND (" + " OR ".join(f"coalesce({metric[m]}, 0) <> 0" for m in q.metrics) + ")"
    return _ordered(q, sql, keys)


def _tallied(
    q: StatsQuery, project_id: int, flavor: Flavor, simple: list[str]
) -> tuple[list[str], str | None]:
    """Of `simple`, the events and pageviews to sum from the hourly counts in a part of their
    own, and those counts, when the rest are distinct counts of the presence rows: DuckDB
    counts distinct values beside a sum by streaming every row to two aggregates (users and
    events per day over 28 days at 10 M events: ~330 → ~270 ms)."""
    tallied = [m for m in simple if m in rollup.COUNTED]
    rest = [m for m in simple if m not in rollup.COUNTED]
    if not tallied or not rest or rollup.relation(q, project_id, flavor, rest) is None:
        return [], None
    tally = rollup.counts(q, project_id, flavor, tallied)
    return (tallied, tally) if tally is not None else ([], None)


def _all_visitors(q: StatsQuery, project_id: int, flavor: Flavor, keys: list[str]) -> str:
    """The visitors of each group without the goal filters (conversion_rate's whole): by the
    last-seen rows where they count them (28 past days at 10 M events: ~370 ms of a 470 ms
    conversion rate, a distinct count of every event's visitor)."""
    whole = replace(q, filters=[f for f in q.filters if not _goal(f)], metrics=["visitors"])
    everyone = base_relation(whole, project_id, flavor, whole.filters, counts=["visitors"])
    seen = rollup.seen(whole, project_id, flavor, "visitors")
    if seen is not None:
        counted = rollup.counted_seen(whole, "visitors", seen, everyone, flavor)
        return f"SELECT {', '.join([*keys, 'visitors AS all_visitors'])} FROM ({counted}) AS c"
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return (
        f"SELECT {', '.join([*keys, SIMPLE['visitors'] + ' AS all_visitors'])} "
        f"FROM {everyone} AS base{group}"
    )


def _per_person(
    q: StatsQuery,
    project_id: int,
    flavor: Flavor,
    counted: str,
    aggregate: dict[str, str],
    simple: list[str],
) -> str | None:
    """Events per person (d0, events) in all time, filtered by person only, as each one's
    last-seen row counts them (the dashboard's people: a grouping of every event by person
    was ~190 ms at 10 M events); the events of no one (`counted`'s, a NULL person) beside."""
    one = [_is_person(d) for d in q.dimensions] == [True]
    if simple != ["events"] or not one or not rollup.always(q):
        return None
    if not all(_is_person(d) for f in q.filters for d in _named(f)):
        return None
    rows = flavor.seen(project_id)
    if rows is None:
        return None
    where = " AND ".join(condition(f, q, flavor) for f in q.filters)
    # no one's: first by the stored ids (no person without them), which DuckDB tests in the
    # scan (by each row group's count of NULLs), not by `person` alone (coalesced from two: a
    # test of every row, ~70 ms of CPU at 10 M events for none at all)
    no_ids = (
        "who IS NULL"  # presence rows
        if aggregate is rollup.METRICS
        else "user_id IS NULL AND anonymous_id IS NULL"  # events
    )
    nobody = f"{no_ids} AND person IS NULL"
    return (
        f"SELECT person AS d0, events FROM {rollup.of_kind(rows, '', flavor)} AS s"
        f"{f' WHERE {where}' if where else ''} UNION ALL "
        f"SELECT d0, {aggregate['events']} AS events FROM {counted} AS base "
        f"WHERE {nobody} GROUP BY d0"
    )


def _ordered(q: StatsQuery, sql: str, keys: list[str]) -> str:
    """The query's order (then its dimensions, a stable order for pages) and page of rows."""
    aliases = {m: f"m{i}" for i, m in enumerate(q.metrics)}
    aliases.update({d.name: f"d{i}" for i, d in enumerate(q.dimensions)})
    order = [f"{aliases[name]} {direction.upper()}" for name, direction in q.order_by]
    order += [f"{k} ASC" for k in keys]  # a stable order for pages
    sql += " ORDER BY " + ", ".join(order)
    sql += f" LIMIT {q.limit} OFFSET {q.offset}"
    return sql


def _label(value: Any, dimension: Dimension) -> Any:
    """A time bucket as its local date (or date and hour); other values as they are."""
    if dimension.kind != "time" or value is None:
        return value
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"{text[:13]}:00:00" if dimension.arg == "hour" else text[:10]


FRACTIONAL = {"value_sum", "value_avg", "views_per_visit", "bounce_rate", "visit_duration",
              "session_duration", "conversion_rate"}  # fmt: skip


def _number(value: Any, metric: str) -> Any:
    """Counts as integers (0 for an empty group); rates, averages and durations (seconds)
    rounded to two places, None where there is nothing to average."""
    if metric in FRACTIONAL:
        number = None if value is None else float(value)
        # 0 / 0 is NaN in some engines, NULL in others: nothing to average either way
        return None if number is None or not math.isfinite(number) else round(number, 2)
    return 0 if value is None else int(value)


def shape(q: StatsQuery, rows: list[list[Any]]) -> dict[str, Any]:
    """The answer: each group's dimensions and metrics in the order asked, and the query as run."""
    n = len(q.dimensions)
    results = [
        {
            "dimensions": [_label(v, d) for v, d in zip(row[:n], q.dimensions, strict=True)],
            "metrics": [_number(v, m) for v, m in zip(row[n:], q.metrics, strict=True)],
        }
        for row in rows
    ]
    return {
        "results": results,
        "query": {
            "metrics": q.metrics,
            "dimensions": [d.name if d.kind != "time" else f"time:{d.arg}" for d in q.dimensions],
            **q.stated(),
            "order_by": [list(o) for o in q.order_by],
            "limit": q.limit,
            "page": q.offset // q.limit + 1,
        },
    }
