"""The ClickHouse Warehouse's hourly counts (storage/warehouse/schema.py's COUNT_COLUMNS: the
events of each UTC hour per type, name, page, where and on what), so events and pageviews are
a sum of a few rows there too (query/rollup.py says which reports read them).

A materialized view adds the rows of every insert into the events as part of that insert,
into a SummingMergeTree that sums each group's rows as it merges its parts. ClickHouse 18.16
keeps no NULL in a sorting key, so each key is stored as its value or '' (0), and `nulls` says
which were NULL (bit k: key k), which the relation reads back.

An erasure deletes events with a mutation that the view does not see; and it runs in any
process while the loader inserts. So the hours it touches are marked (`marks`: state 0 while
it deletes, 1 once it is done), and reports read a marked hour's counts from its events; the
loader, the one writer, later counts those hours again (the rows of the hour deleted, then
made from the events left) and marks them done (state 2). A mark left at 0 by a process that
died keeps its hours read from the events: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from roost.storage.warehouse.schema import COUNT_KEYS

KEYS = [c for c in COUNT_KEYS if c.name not in ("project_id", "timestamp")]
ERASING, ERASED, RECOUNTED = 0, 1, 2


def _stored(name: str) -> str:
    """A key as the table holds it: no NULL."""
    return f"ifNull({name}, {'0' if name == 'bot' else chr(39) * 2})"


_NULLS = " + ".join(f"{1 << k} * isNull({c.name})" for k, c in enumerate(KEYS))
_GROUPS = ", ".join(["project_id", "hour", *(f"k_{c.name}" for c in KEYS), "nulls"])


def of_events(events: str, where: str = "") -> str:
    """The count rows of the events of the table `events` (that `where` selects)."""
    keys = ", ".join(f"{_stored(c.name)} AS k_{c.name}" for c in KEYS)
    return (
        f"SELECT project_id, toStartOfHour(timestamp) AS hour, {keys}, toUInt16({_NULLS}) "
        "AS nulls, count() AS events, sum(greatest(ifNull(value, 0), 0)) AS moved "
        f"FROM {events}{f' WHERE {where}' if where else ''} GROUP BY {_GROUPS}"
    )


def create(db: str, lifetime: int) -> list[str]:
    """The statements that make the counts and the view that fills them (the events table
    exists); the caller fills them with the events already there before any new insert."""
    keys = ", ".join(f"k_{c.name} {'UInt8' if c.name == 'bot' else 'String'}" for c in KEYS)
    return [
        f"CREATE TABLE {db}.counts (project_id UInt32, hour DateTime, {keys}, nulls UInt16, "
        "events UInt64, moved Float64) ENGINE = SummingMergeTree((events, moved)) "
        f"PARTITION BY toYYYYMM(hour) ORDER BY ({_GROUPS}) "
        f"SETTINGS old_parts_lifetime = {lifetime}",
        f"CREATE MATERIALIZED VIEW {db}.counts_of_events TO {db}.counts AS "
        + of_events(f"{db}.events"),
    ]


def drop(db: str) -> list[str]:
    return [
        f"DROP TABLE IF EXISTS {db}.counts_of_events",
        f"DROP TABLE IF EXISTS {db}.counts",
    ]


def create_marks(db: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.count_marks "
        "(mark UInt64, project_id UInt32, hour DateTime, state UInt8) "
        "ENGINE = MergeTree ORDER BY (project_id, hour)"
    )


def marked(db: str, state: str) -> str:
    """The marks (mark, project_id, hour) whose highest state passes `state` (e.g. '< 2')."""
    return (
        f"SELECT mark, project_id, hour FROM {db}.count_marks "
        f"GROUP BY mark, project_id, hour HAVING max(state) {state}"
    )


def relation(db: str, project_id: int) -> str:
    """The project's counts as the DuckDB Warehouse's `roost.counts` rows read: the kept rows
    of the hours no erasure has marked, and those hours' rows made from their events."""
    pid = int(project_id)
    dirty = f"(SELECT hour FROM ({marked(db, '< 2')}) WHERE project_id = {pid})"
    read = ", ".join(
        f"if(bitAnd(nulls, {1 << k}) != 0, NULL, k_{c.name}) AS {c.name}"
        for k, c in enumerate(KEYS)
    )
    kept = (
        f"SELECT project_id, hour AS timestamp, {read}, events, events AS tally, "
        f"if(moved > 0, moved, NULL) AS moved FROM {db}.counts "
        f"WHERE project_id = {pid} AND hour NOT IN {dirty}"
    )
    made = (
        f"SELECT project_id, hour AS timestamp, {read}, events, events AS tally, "
        f"if(moved > 0, moved, NULL) AS moved FROM ({of_events(f'{db}.events', _hours(pid, dirty))})"
    )
    return f"({kept} UNION ALL {made})"


def recount(db: str, project_id: int, hours: Sequence[datetime], stamp: str) -> list[str]:
    """The statements that make the project's rows of `hours` again from their events
    (`stamp` renders a time as SQL): the old rows deleted (a mutation: wait for it before
    the insert)."""
    listed = ", ".join(stamp.format(h) for h in hours)
    return [
        f"ALTER TABLE {db}.counts DELETE WHERE project_id = {int(project_id)} "
        f"AND hour IN ({listed})",
        f"INSERT INTO {db}.counts "
        + of_events(f"{db}.events", _hours(project_id, f"(SELECT arrayJoin([{listed}]) AS hour)")),
    ]


def _hours(project_id: int, hours: str) -> str:
    """The project's events in the hours of `hours` (a subquery of `hour`s): by their days
    first, which the events' sorting key finds without reading the other days."""
    return (
        f"project_id = {int(project_id)} AND toDate(timestamp) IN (SELECT toDate(hour) FROM "
        f"{hours}) AND toStartOfHour(timestamp) IN (SELECT hour FROM {hours})"
    )
