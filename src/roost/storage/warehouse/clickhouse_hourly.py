"""The ClickHouse Warehouse's hourly rows: the counts (storage/warehouse/schema.py's
COUNT_COLUMNS: the events of each UTC hour per type, name, page, where and on what) and the
presence rows (PRESENCE_KEYS: per who, visitor, session, …), so events and pageviews are a sum
of a few rows there too, and people are counted from a few times fewer rows than the events
(query/rollup.py says which reports read them).

A materialized view adds the rows of every insert into the events, as part of that insert, to
a SummingMergeTree that sums each group's rows as it merges its parts. ClickHouse 18.16 keeps
no NULL in a sorting key, so each key is stored as its value or '' (0), and `nulls` says which
were NULL (bit k: key k), which the relation reads back. Presence rows keep the id an event
carries (`who`); its identity link is joined as the reports read them (a link that changes
changes no row). An event inserted twice (sent again past every dedup window, which the
events' ReplacingMergeTree merges into one in time) stays counted twice here.

An erasure deletes events with a mutation that the views do not see; and it runs in any
process while the loader inserts. So the hours it touches are marked (`hour_marks`: state 0
while it deletes, 1 once it is done), and reports read a marked hour's rows from its events;
the loader, the one writer, later makes those hours' rows again (deleted, then made from the
events left) and marks them done (state 2). A mark left at 0 by a process that died keeps its
hours read from the events: slower, never wrong. A report names the marked hours in its SQL,
as they were when it read the Warehouse's version (read by two subqueries, a mark that
changed between them dropped or doubled its hours); past MARKED_IN_SQL of them it reads the
events instead. So the loader makes an hour again only
once its mark is older than any report still running may be (`remake_after`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from roost.storage.warehouse.schema import COUNT_KEYS, PRESENCE_KEYS

ERASING, ERASED, REMADE = 0, 1, 2
STAMP = "toDateTime('{:%Y-%m-%d %H:%M:%S}')"  # an hour as ClickHouse gave it (its zone's)
MARKS = "hour_marks"
# A report names the marked hours (3 times per relation); past this many the SQL would pass
# ClickHouse's max_query_size (256 KiB), so it reads the events instead until they are made
MARKED_IN_SQL = 200
_WHO = "ifNull(user_id, anonymous_id)"
_EMPTY = "''"


@dataclass(frozen=True)
class Hourly:
    name: str  # the table's, in the Warehouse's database
    marker: int  # the `loads` row (id) saying the rows hold every event
    keys: tuple[tuple[str, str], ...]  # (column, its value of an event)
    sums: tuple[tuple[str, str, str], ...]  # (column, its type, its aggregate over events)
    read: tuple[tuple[str, str], ...] = ()  # (a sum, its value as a report reads it)

    @property
    def _groups(self) -> str:
        return ", ".join(["project_id", "hour", *(f"k_{k}" for k, _ in self.keys), "nulls"])

    def of_events(self, events: str, where: str = "") -> str:
        """The rows of the events of the table `events` (that `where` selects)."""
        stored = ", ".join(
            f"ifNull({value}, {'0' if key == 'bot' else _EMPTY}) AS k_{key}"
            for key, value in self.keys
        )
        nulls = " + ".join(f"{1 << k} * isNull({value})" for k, (_, value) in enumerate(self.keys))
        sums = ", ".join(f"{aggregate} AS {column}" for column, _, aggregate in self.sums)
        return (
            f"SELECT project_id, toStartOfHour(timestamp) AS hour, {stored}, "
            f"toUInt16({nulls}) AS nulls, {sums} "
            f"FROM {events}{f' WHERE {where}' if where else ''} GROUP BY {self._groups}"
        )

    def create(self, db: str, lifetime: int) -> list[str]:
        """The statements that make the table and the view that fills it (the events table
        exists); the caller fills it with the events already there before any new insert."""
        keys = ", ".join(f"k_{k} {'UInt8' if k == 'bot' else 'String'}" for k, _ in self.keys)
        sums = ", ".join(f"{column} {kind}" for column, kind, _ in self.sums)
        summed = ", ".join(column for column, _, _ in self.sums)
        return [
            f"CREATE TABLE {db}.{self.name} (project_id UInt32, hour DateTime, {keys}, "
            f"nulls UInt16, {sums}) ENGINE = SummingMergeTree(({summed})) "
            f"PARTITION BY toYYYYMM(hour) ORDER BY ({self._groups}) "
            f"SETTINGS old_parts_lifetime = {lifetime}",
            f"CREATE MATERIALIZED VIEW {db}.{self.name}_of_events TO {db}.{self.name} AS "
            + self.of_events(f"{db}.events"),
        ]

    def drop(self, db: str) -> list[str]:
        return [
            f"DROP TABLE IF EXISTS {db}.{self.name}_of_events",
            f"DROP TABLE IF EXISTS {db}.{self.name}",
        ]

    def relation(self, db: str, project_id: int, marked: Sequence[datetime]) -> str:
        """The project's rows as the DuckDB Warehouse's read (the same columns, `tally` the
        events): the kept rows of the hours not `marked` by an erasure, and those hours' rows
        made from their events."""
        pid = int(project_id)
        as_read = dict(self.read)
        read = ", ".join(
            [
                *(
                    f"if(bitAnd(nulls, {1 << k}) != 0, NULL, k_{key}) AS {key}"
                    for k, (key, _) in enumerate(self.keys)
                ),
                *(f"{as_read[c]} AS {c}" if c in as_read else c for c, _, _ in self.sums),
                "events AS tally",
            ]
        )
        kept = (
            f"SELECT project_id, hour AS timestamp, {read} FROM {db}.{self.name} "
            f"WHERE project_id = {pid}"
        )
        if not marked:
            return f"({kept})"
        listed = ", ".join(STAMP.format(h) for h in marked)
        made = (
            f"SELECT project_id, hour AS timestamp, {read} FROM ({self._of_hours(db, pid, listed)})"
        )
        return f"({kept} AND hour NOT IN ({listed}) UNION ALL {made})"

    def remake(self, db: str, project_id: int, hours: Sequence[datetime]) -> list[str]:
        """The statements that make the project's rows of `hours` again from their events:
        the old rows deleted (a mutation: wait for it before the insert)."""
        listed = ", ".join(STAMP.format(h) for h in hours)
        return [
            f"ALTER TABLE {db}.{self.name} DELETE WHERE project_id = {int(project_id)} "
            f"AND hour IN ({listed})",
            f"INSERT INTO {db}.{self.name} {self._of_hours(db, project_id, listed)}",
        ]

    def _of_hours(self, db: str, project_id: int, listed: str) -> str:
        """The rows of the project's events in the `listed` hours (times in SQL): by their
        days first, which the events' sorting key finds without reading the other days."""
        hours = f"(SELECT arrayJoin([{listed}]) AS hour)"
        return self.of_events(
            f"{db}.events",
            f"project_id = {int(project_id)} AND toDate(timestamp) IN "
            f"(SELECT toDate(hour) FROM {hours}) AND toStartOfHour(timestamp) IN {hours}",
        )


COUNTS = Hourly(
    "counts",
    2,
    tuple((c.name, c.name) for c in COUNT_KEYS if c.name not in ("project_id", "timestamp")),
    (
        ("events", "UInt64", "count()"),
        ("moved", "Float64", "sum(greatest(ifNull(value, 0), 0))"),  # of positive values
    ),
    (("moved", "if(moved > 0, moved, NULL)"),),  # NULL: none moved any
)
PRESENCE = Hourly(
    "presence",
    3,
    tuple(
        (c.name, _WHO if c.name == "who" else c.name)
        for c in PRESENCE_KEYS
        if c.name not in ("project_id", "timestamp", "linked")
    ),
    (("events", "UInt64", "count()"),),
)
HOURLY = (COUNTS, PRESENCE)


def with_people(presence: str, identities: str, project_id: int) -> str:
    """Presence rows with `linked` and `person`, as the DuckDB Warehouse's: each id's link
    joined (`identities`: the links table)."""
    return (
        "(SELECT *, if(isNull(linked), who, linked) AS person FROM "
        f"(SELECT *, ifNull(who, '') AS who_key FROM {presence}) "
        f"ANY LEFT JOIN (SELECT alias AS who_key, user_id AS linked FROM {identities} "
        f"WHERE project_id = {int(project_id)}) USING who_key)"
    )


def create_marks(db: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{MARKS} "
        "(mark UInt64, project_id UInt32, hour DateTime, state UInt8, at DateTime) "
        "ENGINE = MergeTree ORDER BY (project_id, hour)"
    )


def mark(db: str, marks: Sequence[tuple[int, int, datetime]], state: int) -> str:
    """The statement that gives each mark (mark, project_id, hour) `state`, now."""
    rows = ", ".join(
        f"({int(m)}, {int(p)}, {STAMP.format(h)}, {int(state)}, now())" for m, p, h in marks
    )
    return f"INSERT INTO {db}.{MARKS} (mark, project_id, hour, state, at) VALUES {rows}"


def marked(db: str, state: str, seconds: float = 0.0) -> str:
    """The marks (mark, project_id, hour) whose highest state passes `state` (e.g. '< 2'),
    and reached it at least `seconds` ago."""
    older = f" AND max(at) <= now() - {int(seconds)}" if seconds else ""
    return (
        f"SELECT mark, project_id, hour FROM {db}.{MARKS} "
        f"GROUP BY mark, project_id, hour HAVING max(state) {state}{older}"
    )
