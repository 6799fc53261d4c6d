"""Which reports the rollups answer, exactly, and with what.

A Warehouse may keep, beside the events, presence rows — one per group of events of an hour
with the same who, person, visitor, session, type, bot flag, country, browser, OS and device
(storage/warehouse/schema.py's PRESENCE_KEYS), a few times fewer rows than events, so counting
distinct people over them is a few times cheaper (it keeps its visits as rows too, which
reports of visits read whatever their zone: query/stats.py). A query can read presence rows
instead of the events when everything it asks is decided by their columns alone and its time
buckets and range are whole UTC hours: then each
row lies wholly inside or outside each bucket and each filter, and every metric below is the
events' own answer, not an estimate. Events and pageviews alone are sums of the hourly counts
(COUNT_KEYS: the same without whom, and with the event name and page), fewer rows again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from roost.dialects.clock import STORABLE
from roost.storage.warehouse.flavor import Flavor
from roost.storage.warehouse.schema import COUNT_KEYS, PRESENCE_KEYS, SEEN_DIMENSIONS


class StatsQuery(Protocol):
    """What of a query (query/stats.py's StatsQuery, which imports this module) decides."""

    @property
    def metrics(self) -> list[str]: ...
    @property
    def dimensions(self) -> list[Any]: ...
    @property
    def filters(self) -> list[Any]: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def timezone(self) -> str: ...
    @property
    def asked(self) -> datetime | None: ...


NOT_BOT = "NOT coalesce(bot, 1 = 0)"  # bots left out (docs/wire-contracts.md); 1 = 0: no FALSE in ClickHouse 18
# The Stats API's metric → its aggregate over presence rows (or hourly counts). They sum each
# row's events as `tally` (the same column): ClickHouse 18 reads any `events` in a SELECT
# that names a sum `events` as that sum (sum(CASE … THEN events END) is then an aggregate in
# an aggregate), whatever table it is qualified with.
METRICS = {
    "events": "coalesce(sum(tally), 0)",  # 0, not NULL, over no rows: as count(*)
    "users": "count(DISTINCT person)",
    "visitors": f"count(DISTINCT CASE WHEN {NOT_BOT} THEN visitor END)",
    "pageviews": f"coalesce(sum(CASE WHEN type = 'page' AND {NOT_BOT} THEN tally END), 0)",
    "sessions": "count(DISTINCT session_id)",
}
# what a query may group or filter presence rows by (`person` is coalesce(linked, who))
COLUMNS = frozenset(c.name for c in PRESENCE_KEYS) - {
    "project_id",
    "timestamp",
    "who",
    "linked",
} | {"person"}
# and the hourly counts (no one in them: events and pageviews alone)
COUNTED = frozenset({"events", "pageviews"})
COUNT_COLUMNS = frozenset(c.name for c in COUNT_KEYS) - {"project_id", "timestamp"}
# No stored time is at or after this (dialects/clock.py): DuckDB proves a range of rows last seen
# after it empty, then builds its join's hash table of the other side, every event (~200 ms)
STORED_UNTIL = STORABLE[1].replace(tzinfo=None)
STORED_FROM = STORABLE[0].replace(tzinfo=None)  # nor before this
# The time zone database lists each zone's changes up to 2037 (Morocco's to 2087), then repeats
# a yearly rule: a zone right from 2037 to HORIZON is right ever after.
HORIZON = datetime(2090, 1, 1)
RULES_FROM = datetime(2037, 1, 1)
EARLIEST = datetime(1900, 1, 1)


def relation(
    q: StatsQuery,
    project_id: int,
    flavor: Flavor,
    metrics: Sequence[str] | None = None,
    also: Sequence[Any] = (),
) -> str | None:
    """The presence rows `metrics` (q's unless given) of `q` can be
    counted from, or None; `also`: further filters the report applies to them."""
    if not set(q.metrics if metrics is None else metrics) <= METRICS.keys():
        return None
    if not all(d.kind == "time" or _column(d) for d in q.dimensions):
        return None
    if not all(_decided(f) for f in [*q.filters, *also]):
        return None
    return flavor.presence(project_id) if _hourly(q) else None


def counts(q: StatsQuery, project_id: int, flavor: Flavor, metrics: Sequence[str]) -> str | None:
    """The hourly counts (storage/warehouse/schema.py's COUNT_COLUMNS) `metrics` of `q` can
    be summed from, or None: events and pageviews alone, grouped and filtered by their
    columns, in a range whose hours lie wholly in it or out (as `relation`)."""
    if not set(metrics) <= COUNTED:
        return None
    if not all(d.kind == "time" or _column(d, COUNT_COLUMNS) for d in q.dimensions):
        return None
    if not all(_decided(f, COUNT_COLUMNS) for f in q.filters):
        return None
    return flavor.counts(project_id) if _hourly(q) else None


SEEN_WHO = {"users": "person", "visitors": "visitor", "sessions": "session_id"}  # in the events


def seen(q: StatsQuery, project_id: int, flavor: Flavor, metric: str) -> str | None:
    """The last-seen rows (storage/warehouse/schema.py's SEEN_COLUMNS) `metric` (users,
    visitors or sessions) of `q` can be counted from, or None: when SEEN_DIMENSIONS keeps them
    as it asks (users in all or per event name; visitors in all, or per page, country,
    browser, OS or device of their pageviews: the dashboard's panels; sessions in all). Exact
    for any range (instants, not only whole hours): `counted_seen`."""
    if _seen_dimension(q, metric) is None:
        return None
    return flavor.seen(project_id)


def ends_after_asked(q: StatsQuery) -> bool:
    """Whether `q`'s range ends after it was asked (the dashboard's: up to today, or all): few
    people, if any, were seen after it."""
    return q.asked is not None and q.end > q.asked


def seen_always(q: StatsQuery, project_id: int, flavor: Flavor, dimension: str) -> str | None:
    """The last-seen rows of `dimension` (schema.py's SEEN_DIMENSIONS), if the Warehouse
    keeps them and `q` asks for all time with no filter: each row's first and last times and
    count of events are then those of the range."""
    rows = flavor.seen(project_id)
    if rows is None or q.filters or not always(q):
        return None
    return of_kind(rows, dimension, flavor)


def of_kind(seen: str, dimension: str, flavor: Flavor) -> str:
    """The last-seen rows of one `dimension` (schema.py's SEEN_DIMENSIONS) of `seen`."""
    return f"(SELECT * FROM {seen} AS s WHERE dimension = {flavor.string(dimension)})"


def always(q: StatsQuery) -> bool:
    """Whether `q`'s range holds every time an event may have."""
    return q.start <= STORED_FROM and q.end >= STORED_UNTIL


def in_range(q: StatsQuery, flavor: Flavor, since: str, until: str) -> str | None:
    """The test that `since` (a column) is at or after the start of `q`'s range and `until`
    before its end — an event's time: both `timestamp`; a row lying within it: `first`,
    `last`; one overlapping it: `last`, `first`. None in all time, where every row passes: said
    here because DuckDB, its statistics pass off (storage/warehouse/duckdb.py), would test
    each row anyway (users per month at 10 M events 75 → 29 ms, totals at 100 M 36 → 15)."""
    if always(q):
        return None
    return f"{since} >= {flavor.timestamp(q.start)} AND {until} < {flavor.timestamp(q.end)}"


def where(*conditions: str | None) -> str:
    """A WHERE clause of the conditions given (None: none), with a space before it, or ''."""
    given = [c for c in conditions if c]
    return f" WHERE {' AND '.join(given)}" if given else ""


def _seen_dimension(q: StatsQuery, metric: str) -> str | None:
    """The `dimension` of the last-seen rows that hold `metric` as `q` asks it, if any."""
    if len(q.dimensions) > 1:
        return None
    column = None
    if q.dimensions:
        if q.dimensions[0].kind != "column":
            return None
        column = q.dimensions[0].arg
    only: tuple[str, str] | bool | None = None  # the one filter `column is value`, if so
    if q.filters:
        f = q.filters[0]
        single = len(q.filters) == 1 and f[0] == "is" and f[1].kind == "column" and len(f[2]) == 1
        only = (f[1].arg, f[2][0]) if single else False
    asked = (metric, column, only, None, None, None)  # a query takes the column's value itself
    for dimension, kept in SEEN_DIMENSIONS.items():
        if (kept.metric, kept.column, kept.only, kept.after, kept.positive, kept.prop) == asked:
            return dimension
    return None


def counted_seen(
    q: StatsQuery, metric: str, seen: str, events: str, flavor: Flavor, dimension: str | None = None
) -> str:
    """`metric` of `q` (per its dimension d0, if any) counted from its last-seen rows `seen`:
    those first or last seen within the range, and — of those seen before it and after it,
    who may have been there too — the ones among `events` (the range's, with d0, and `person`
    for users). A range up to today has few of those, if any (an event timed ahead), as has
    one that holds most of the events (28 past days of visitors per page at 10 M events, all
    in them: 556 → ~15 ms); an empty set of them costs nothing: DuckDB skips a join whose
    build side is empty. `dimension`: of those rows, per value (d0) if they have one, instead
    of those `q` asks for."""
    keyed = bool(q.dimensions) or (
        dimension is not None and SEEN_DIMENSIONS[dimension].column is not None
    )
    rows = of_kind(seen, dimension or _seen_dimension(q, metric) or "", flavor)
    key, group = ("d0, ", " GROUP BY d0") if keyed else ("", "")
    last = in_range(q, flavor, "last", "last")
    ended = q.end < STORED_UNTIL  # else no one's last time is after it (all time, as asked)
    inside = f"({last}) OR ({in_range(q, flavor, 'first', 'first')})" if ended else last
    within = (
        f"SELECT {'value AS d0, ' if keyed else ''}count(*) AS {metric} FROM {rows} AS s"
        f"{where(inside)}{' GROUP BY value' if keyed else ''}"
    )
    if not ended:
        return within
    who = f"b.{SEEN_WHO[metric]}"
    match = " AND l.value IS NOT DISTINCT FROM b.d0" if keyed else ""
    # bots' events left out as the events' count does (a WHERE after the join cost DuckDB its
    # skipping of an empty join: 3 → 170 ms at 10 M events)
    counted = f"CASE WHEN {NOT_BOT} THEN {who} END" if metric == "visitors" else who
    # `first <= last`, true of every row, is a test of two columns DuckDB cannot push into
    # its scan, so it estimates those rows fewer than the range's events and builds its hash
    # table of them: none, and it skips the events (else it built one of the events: 28 past
    # days of resource flows at 10 M events 300 → 23 ms)
    around = (
        f"first < {flavor.timestamp(q.start)} AND last >= {flavor.timestamp(q.end)} "
        "AND first <= last"
    )
    later = (
        f"SELECT {key}count(DISTINCT {counted}) AS {metric} FROM {events} AS b SEMI JOIN "
        f"(SELECT value, person FROM {rows} AS s WHERE {around}) AS l "
        f"ON l.person = {who}{match}{group}"
    )
    return f"SELECT {key}sum({metric}) AS {metric} FROM ({within} UNION ALL {later}) AS u{group}"


def seen_by_time(q: StatsQuery, project_id: int, flavor: Flavor, metric: str) -> str | None:
    """The last-seen rows `metric` (users or visitors) of `q` may be counted from per time
    bucket (`counted_by_time`), or None: one time dimension, no filter, and a range that ends
    after it was asked (one that ended before may hold few people whole: 28 past days of
    visitors per day at 10 M events took ~350 ms so, ~180 from the presence rows)."""
    if metric not in SPANNED or q.filters or [d.kind for d in q.dimensions] != ["time"]:
        return None
    return flavor.seen(project_id) if ends_after_asked(q) else None


SPANNED = {"users": "", "visitors": "visitor"}  # the last-seen rows of each in all


def counted_by_time(
    q: StatsQuery,
    metric: str,
    seen: str,
    counted: str,
    flavor: Flavor,
    dimension: str | None = None,
) -> str:
    """`metric` of `q` per time bucket (d0) from the last-seen rows `seen` and the range's
    presence rows `counted` (with d0). One whose first and last times lie in the range was
    there in the buckets of both; if no bucket lies between them, in those alone — a row
    counts once or twice (at 10 M events nearly everyone: a distinct count of 1.85 M people
    per month was ~180 ms of a 290 ms page; at 100 M, 3.2 M visitors of whom half span two
    months). The others are counted from their presence rows. `dimension`: of those rows
    instead (players).

    The rows are first counted per pair of first and last hour (where each UTC hour lies in
    one local one, `_hourly`: at 100 M events 18.5 M people are ~170,000 pairs), each bucket
    then taken of a pair instead of a row (a month of each row's times twice: ~1.5 s); the
    pairs once, for the three parts that read them (DuckDB made them once for each of two:
    users per month at 100 M events 374 → 212 ms). Only the DuckDB Warehouse keeps last-seen
    rows, so its SQL alone: a materialized CTE."""
    rows = of_kind(seen, SPANNED[metric] if dimension is None else dimension, flavor)
    within = in_range(q, flavor, "first", "last")
    keys = [flavor.bucket("hour", c) if _hourly(q) else c for c in ("first", "last")]
    counted_pairs = (
        f"SELECT {keys[0]} AS f, {keys[1]} AS l, count(*) AS n FROM {rows} AS s"
        f"{where(within)} GROUP BY 1, 2"
    )
    pairs = "SELECT * FROM pairs"
    interval = q.dimensions[0].arg
    first, last = (flavor.bucket(interval, flavor.local(c, q.timezone)) for c in ("f", "l"))
    # no bucket between: the last's is the first's or the next (a local time that does not
    # exist, a clock gone forward, looks like one between: counted from the presence rows)
    known = f"{last} <= {first} + INTERVAL 1 {interval.upper()}"
    ends = (
        f"SELECT {first} AS d0, n FROM ({pairs}) AS p WHERE {known} UNION ALL "
        f"SELECT {last} AS d0, n FROM ({pairs}) AS p WHERE {known} AND {last} <> {first}"
    )
    unknown = f"SELECT f, l FROM ({pairs}) AS p WHERE NOT ({known})"
    who = SEEN_WHO[metric]
    each = f"CASE WHEN {NOT_BOT} THEN {who} END" if metric == "visitors" else who
    spanning = f"({keys[0]}, {keys[1]}) IN ({unknown})"
    beyond = f"(NOT ({within}) OR {spanning})" if within else spanning
    others = (
        f"SELECT d0, count(DISTINCT {each}) AS {metric} FROM {counted} AS b SEMI JOIN "
        f"(SELECT person FROM {rows} AS s{where(in_range(q, flavor, 'last', 'first'), beyond)}) "
        f"AS o ON o.person = b.{who} GROUP BY d0"
    )
    return (
        f"WITH pairs AS MATERIALIZED ({counted_pairs}) "
        f"SELECT d0, sum({metric}) AS {metric} FROM (SELECT d0, sum(n) AS {metric} "
        f"FROM ({ends}) AS e GROUP BY d0 UNION ALL {others}) AS u GROUP BY d0"
    )


def whole_hours(q: StatsQuery) -> bool:
    """Whether the range starts and ends on the hour, UTC: each hour's rows lie wholly in it
    or out."""
    return _whole_hour(q.start) and _whole_hour(q.end)


def _hourly(q: StatsQuery) -> bool:
    """Whether each UTC hour lies wholly inside or outside the range and each time bucket."""
    if not whole_hours(q):
        return False
    return q.timezone in ("UTC", "Etc/UTC") or q.start >= whole_hours_since(q.timezone)


def _column(dimension: Any, columns: frozenset[str] = COLUMNS) -> bool:
    return bool(dimension.kind == "column" and dimension.arg in columns)


def _decided(f: Any, columns: frozenset[str] = COLUMNS) -> bool:
    """Whether a filter looks at `columns` (the presence rows') only."""
    if f[0] in ("and", "or"):
        return all(_decided(g, columns) for g in f[1])
    if f[0] == "not":
        return _decided(f[1], columns)
    return _column(f[1], columns)


def _whole_hour(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


@functools.cache  # bounded: the time zone database's ~600 names (the query checked the name)
def whole_hours_since(timezone: str) -> datetime:
    """The naive UTC instant from which `timezone` is a whole number of hours from UTC and
    changes only at the start of a UTC hour (so each UTC hour lies in one local hour, day,
    week and month); HORIZON for a zone such as Asia/Kolkata that never is. Found day by day
    from 2090 back (~0.1 s the first time for a zone: reports are built off the event loop)."""
    since = _checked_since(timezone)
    return HORIZON if since > RULES_FROM else since


def _checked_since(timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    hour = timedelta(hours=1)

    def offset(second: int) -> timedelta | None:
        return datetime.fromtimestamp(second, UTC).astimezone(zone).utcoffset()

    day = 86_400
    moment = int(HORIZON.replace(tzinfo=UTC).timestamp())
    after = offset(moment)
    if after is None or after % hour:
        return HORIZON
    earliest = int(EARLIEST.replace(tzinfo=UTC).timestamp())
    while moment > earliest:
        before = offset(moment - day)
        if before is None or before % hour:
            return _naive(moment)
        if before != after:  # a change within this day: find its second
            low, high = moment - day, moment
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            if high % 3600:
                return _naive(moment)
        moment, after = moment - day, before
    return EARLIEST


def _naive(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC).replace(tzinfo=None)
