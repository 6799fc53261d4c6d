"""Which reports the rollups answer, exactly, and with what.

A Warehouse may keep, beside the events, presence rows — one per group of events of an hour
with the same who, person, visitor, session, type, bot flag, country, browser, OS and device
(storage/warehouse/schema.py's PRESENCE_KEYS), a few times fewer rows than events, so counting
distinct people over them is a few times cheaper (it keeps its visits as rows too, which
reports of visits read whatever their zone: query/stats.py). A query can read presence rows
instead of the events when everything it asks is decided by their columns alone and its time
buckets and range are whole UTC hours: then each
row lies wholly inside or outside each bucket and each filter, and every metric below is the
events' own answer, not an estimate.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from roost.storage.warehouse.flavor import Flavor
from roost.storage.warehouse.schema import PRESENCE_KEYS


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


NOT_BOT = "NOT coalesce(bot, 1 = 0)"  # bots left out (docs/wire-contracts.md); 1 = 0: no FALSE in ClickHouse 18
METRICS = {  # the Stats API's metric → its aggregate over presence rows
    "events": "coalesce(sum(events), 0)",  # 0, not NULL, over no rows: as count(*)
    "users": "count(DISTINCT person)",
    "visitors": f"count(DISTINCT CASE WHEN {NOT_BOT} THEN visitor END)",
    "pageviews": f"coalesce(sum(CASE WHEN type = 'page' AND {NOT_BOT} THEN events END), 0)",
    "sessions": "count(DISTINCT session_id)",
}
# what a query may group or filter presence rows by (`person` is coalesce(linked, who))
COLUMNS = frozenset(c.name for c in PRESENCE_KEYS) - {
    "project_id",
    "timestamp",
    "who",
    "linked",
} | {"person"}
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


def seen(q: StatsQuery, project_id: int, flavor: Flavor) -> str | None:
    """The last-seen rows (storage/warehouse/schema.py's SEEN_COLUMNS) the users of `q` can be
    counted from, or None: when it filters nothing and splits people by the event name at
    most. Any time range: they are exact for instants, not only whole hours."""
    if q.filters or len(q.dimensions) > 1:
        return None
    if q.dimensions and not (q.dimensions[0].kind == "column" and q.dimensions[0].arg == "event"):
        return None
    return flavor.seen(project_id)


def users_seen(q: StatsQuery, seen: str, people: str, flavor: Flavor) -> str:
    """`users` of `q` (per event name d0, when it splits by it) counted from its last-seen rows
    `seen`: those last seen within the range, and — of those last seen after it, who may have
    been there too — the ones among `people` (its events, with d0 and person). An empty range
    of late rows costs nothing: DuckDB skips a join whose build side is empty."""
    keyed = bool(q.dimensions)
    start, end = flavor.timestamp(q.start), flavor.timestamp(q.end)
    dimension = flavor.string("event" if keyed else "")
    rows = f"(SELECT * FROM {seen} AS s WHERE dimension = {dimension})"
    key, group = ("d0, ", " GROUP BY d0") if keyed else ("", "")
    within = (
        f"SELECT {'value AS d0, ' if keyed else ''}count(*) AS users FROM {rows} AS s "
        f"WHERE last >= {start} AND last < {end}{' GROUP BY value' if keyed else ''}"
    )
    match = " AND l.value IS NOT DISTINCT FROM b.d0" if keyed else ""
    later = (
        f"SELECT {key}count(DISTINCT b.person) AS users FROM {people} AS b SEMI JOIN "
        f"(SELECT value, person FROM {rows} AS s WHERE last >= {end}) AS l "
        f"ON l.person = b.person{match}{group}"
    )
    return f"SELECT {key}sum(users) AS users FROM ({within} UNION ALL {later}) AS u{group}"


def _hourly(q: StatsQuery) -> bool:
    """Whether each UTC hour lies wholly inside or outside the range and each time bucket."""
    if not (_whole_hour(q.start) and _whole_hour(q.end)):
        return False
    return q.timezone in ("UTC", "Etc/UTC") or q.start >= whole_hours_since(q.timezone)


def _column(dimension: Any) -> bool:
    return bool(dimension.kind == "column" and dimension.arg in COLUMNS)


def _decided(f: Any) -> bool:
    """Whether a filter looks at presence columns only."""
    if f[0] in ("and", "or"):
        return all(_decided(g) for g in f[1])
    if f[0] == "not":
        return _decided(f[1])
    return _column(f[1])


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
