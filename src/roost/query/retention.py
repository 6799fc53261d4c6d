"""Retention cohorts: of the people who started in a period, how many came back in each after.

    {"period": "week", "periods": 8, "start": "Signed Up", "return": null,
     "date_range": "12mo", "timezone": "Europe/Berlin", "filters": [...]}

A person's cohort is the period (day, week from Monday, month; in the query's time zone) of
their first `start` event in the date range (any event when not given). They are retained in
period i if they did a `return` event (any event when not given) i periods after their
cohort's; period 0 is the cohort's own. People are the Stats API's `users`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from roost.errors import BadRequest
from roost.query import rollup, stats
from roost.storage.warehouse.flavor import Flavor

PERIODS = ("day", "week", "month")
MAX_PERIODS = 60


@dataclass(frozen=True)
class Retention:
    scope: stats.StatsQuery
    period: str
    periods: int
    start: Any | None  # a parsed filter, or None for any event
    back: Any | None
    today: date  # in the query's time zone: no period after it has happened

    def conditions(self) -> list[Any]:
        """The filters on starting and coming back that are set."""
        return [c for c in (self.start, self.back) if c is not None]


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def _condition(raw: Any, field: str) -> Any | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw:
        return stats.parse_filter(["is", "event", [raw]], field, None)
    if isinstance(raw, list):
        return stats.parse_filter(raw, field, None, visits=False)
    raise _bad(field, 'must be an event name or a filter such as ["is", "type", ["page"]]')


def parse(body: Any, now: datetime) -> Retention:
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    known = {"period", "periods", "start", "return", "date_range", "timezone", "filters"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise _bad(unknown[0], "is not a field of a retention query")
    shared = {k: body[k] for k in ("date_range", "timezone", "filters") if k in body}
    scope = stats.parse({"metrics": ["users"], **shared}, now)
    period = body.get("period", "week")
    if period not in PERIODS:
        raise _bad("period", f"must be one of {', '.join(PERIODS)}")
    periods = body.get("periods", 8)
    if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= MAX_PERIODS:
        raise _bad("periods", f"must be a whole number from 1 to {MAX_PERIODS}")
    return Retention(
        scope, period, periods, _condition(body.get("start"), "start"),
        _condition(body.get("return"), "return"),
        now.astimezone(ZoneInfo(scope.timezone)).date(),
    )  # fmt: skip


def _where(condition: Any | None, r: Retention, flavor: Flavor) -> str:
    return "" if condition is None else f" WHERE {stats.condition(condition, r.scope, flavor)}"


def build(r: Retention, project_id: int, flavor: Flavor) -> str:
    """Rows of (cohort, period, people, whole); `whole` marks the row of the cohort's size.

    Written in the SQL both engines run: no CTEs or inequality joins (ClickHouse 18), so the
    cohorts are read twice and "period ≥ cohort" is a WHERE after the join on the person.
    """
    presence = rollup.relation(r.scope, project_id, flavor, also=r.conditions())  # the same people
    everyone = stats.base_relation(
        r.scope, project_id, flavor, r.scope.filters, people=True, rows=presence
    )
    base = f"(SELECT * FROM {everyone} AS p WHERE person IS NOT NULL)"  # no one's: not a person
    bucket = flavor.bucket(r.period, flavor.local("timestamp", r.scope.timezone))
    cohorts = (
        f"(SELECT person, min({bucket}) AS cohort FROM {base} AS b"
        f"{_where(r.start, r, flavor)} GROUP BY person)"
    )
    back = f"(SELECT person, {bucket} AS period FROM {base} AS b{_where(r.back, r, flavor)})"
    if r.start == r.back:  # one condition: a person's cohort is their first active period
        # by the last-seen rows, each read by a join on the person (which passes no NULL):
        # without the test of each row, DuckDB estimates these rows more than those, and
        # builds its hash tables of those (28 past days at 10 M events: ~370 ms, else)
        active = f"(SELECT person, {bucket} AS period FROM {everyone} AS b)"
        spans = _spans(r, project_id, flavor, active)
        if spans is not None:
            back = active
        return f"SELECT *, 0 AS whole FROM ({flavor.cohorts(back, spans)}) AS c"
    active = f"(SELECT DISTINCT * FROM {back} AS a)"
    return (
        "SELECT cohort, period, count(DISTINCT person) AS people, 0 AS whole "
        f"FROM {cohorts} AS c JOIN {active} AS a USING (person) "
        "WHERE period >= cohort GROUP BY cohort, period "
        "UNION ALL SELECT cohort, cohort AS period, count(*) AS people, 1 AS whole "
        f"FROM {cohorts} AS c GROUP BY cohort"
    )


def _spans(r: Retention, project_id: int, flavor: Flavor, active: str) -> str | None:
    """Each person's first and last period in the range (person, cohort, last) when the
    last-seen rows hold them (any event, no filter): theirs, of those first and last seen
    within it; of the others seen in it, their `active` rows' (person, period). At 10 M
    events, 28 past days holding them all: a grouping of 4 M presence rows per person was
    ~570 ms of ~1,090 ms of CPU."""
    rows = flavor.seen(project_id)
    if rows is None or r.start is not None or r.scope.filters:
        return None
    people = rollup.of_kind(rows, "", flavor)

    def period(column: str) -> str:
        return flavor.bucket(r.period, flavor.local(column, r.scope.timezone))

    within = rollup.in_range(r.scope, flavor, "first", "last")  # None: all time, every row
    spans = (
        f"SELECT person, {period('first')} AS cohort, {period('last')} AS last "
        f"FROM {people} AS s{rollup.where(within)}"
    )
    if within is None:
        return f"({spans})"
    # `first <= last`: rollup.counted_seen says why
    cut = (
        f"SELECT person FROM {people} AS s WHERE {rollup.in_range(r.scope, flavor, 'last', 'first')} "
        f"AND NOT ({within}) AND first <= last"
    )
    return (
        f"({spans} UNION ALL SELECT a.person, min(a.period) AS cohort, max(a.period) AS last "
        f"FROM {active} AS a SEMI JOIN ({cut}) AS o ON o.person = a.person GROUP BY a.person)"
    )


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _index(cohort: date, period: date, unit: str) -> int:
    if unit == "day":
        return (period - cohort).days
    if unit == "week":
        return (period - cohort).days // 7
    return (period.year - cohort.year) * 12 + period.month - cohort.month


def _start(cohort: date, i: int, unit: str) -> date:
    """The first day of a cohort's i-th period."""
    if unit == "day":
        return cohort + timedelta(days=i)
    if unit == "week":
        return cohort + timedelta(days=7 * i)
    month = cohort.month - 1 + i
    return date(cohort.year + month // 12, month % 12 + 1, 1)


def shape(r: Retention, rows: list[list[Any]]) -> dict[str, Any]:
    sizes: dict[date, int] = {}
    retained: dict[date, list[int]] = {}
    same = r.start == r.back  # no rows of the cohorts' sizes: each is its period 0's count
    for cohort, period, people, whole in rows:
        day = _day(cohort)
        if whole:
            sizes[day] = int(people)
            continue
        i = _index(day, _day(period), r.period)
        if same and i == 0:
            sizes[day] = int(people)
        if i < r.periods:
            retained.setdefault(day, [0] * r.periods)[i] = int(people)
    last = min(r.scope.last_day or r.today, r.today)
    cohorts = []
    for day, size in sorted(sizes.items()):
        # a period that begins after the range's last day (or today) has not been seen:
        # null, not 0%
        seen = [_start(day, i, r.period) <= last for i in range(r.periods)]
        counts = retained.get(day, [0] * r.periods)
        cohorts.append(
            {
                "cohort": day.isoformat(),
                "people": size,
                "retained": [n if ok else None for n, ok in zip(counts, seen, strict=True)],
                "percent": [
                    (round(100.0 * n / size, 2) if size else 0.0) if ok else None
                    for n, ok in zip(counts, seen, strict=True)
                ],
            }
        )
    return {
        "cohorts": cohorts,
        "query": {
            "period": r.period,
            "periods": r.periods,
            **r.scope.stated(),
        },
    }
