"""The rows the DuckDB Warehouse keeps beside its events so reports count less: presence and
visit spans (storage/warehouse/schema.py declares them, query/rollup.py says which reports read
them).

They hold the events up to one Log offset, `rolled` (in ROLLED): the Warehouse rolls the
events loaded since into them every ROLL_EVENTS or when idle, so a load costs what it did
without them. A report reads the rows *and* the same rows made on the fly from the few events
past `rolled` (`presence`, `spans`), in one snapshot: never ahead of or behind its events.
Each function runs inside the caller's transaction: the rows are merged an hour at a time,
re-resolved when identity links change, made again from the events of the hours an erasure
touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from roost.storage.warehouse.schema import (
    PRESENCE_COLUMNS,
    PRESENCE_KEYS,
    SPAN_COLUMNS,
    VISIT_GAP_SECONDS,
    Column,
)

EVENTS = "roost.events"
IDENTITIES = "roost.identities"
PRESENCE = "roost.presence"
SPANS = "roost.visit_spans"
ROLLED = "roost.rollups"  # one row: the Log offset the rollups hold the events up to
_ROLLED = f"(SELECT rolled FROM {ROLLED})"
_ROLLED_COLUMN = Column("rolled", "BIGINT")

_WHO = "coalesce(e.user_id, e.anonymous_id)"
_PRESENCE_VALUES = {
    "timestamp": "date_trunc('hour', e.timestamp)",
    "who": _WHO,
    "events": "count(*)",
}


def _presence_of(links: str | None) -> str:
    """The presence rows of events, … WHERE <which events> GROUP BY: with the identity links
    of the relation `links` (project_id, alias, user_id), or none."""
    values = {**_PRESENCE_VALUES, "linked": "i.user_id" if links else "NULL"}
    joined = (
        f" LEFT JOIN {links} i ON i.project_id = e.project_id AND i.alias = {_WHO}" if links else ""
    )
    return (
        "SELECT "
        + ", ".join(f'{values.get(c.name, f"e.{c.name}")} AS "{c.name}"' for c in PRESENCE_COLUMNS)
        + f" FROM {EVENTS} e{joined}"
    )


_PRESENCE_OF = _presence_of(IDENTITIES)
_PRESENCE_GROUPS = " GROUP BY " + ", ".join(str(n) for n in range(1, len(PRESENCE_KEYS) + 1))
_PRESENCE_KEYS = ", ".join(f'"{c.name}"' for c in PRESENCE_KEYS)

_LONGEST = VISIT_GAP_SECONDS * 1_000_000  # µs, as query/stats.py's visits count gaps
_HOUR = "PARTITION BY project_id, timestamp, visitor"


def _runs(spans: str) -> str:
    """The relation `spans` (visit spans, as SPANS holds them) with those of one visitor and
    hour that touch or overlap made one: its runs of events with no gap over 30 minutes."""
    window = f"{_HOUR} ORDER BY began, ended"
    reach = (
        f"SELECT *, max(ended) OVER ({window} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
        f"AS reach FROM {spans} AS spans"
    )
    runs = (
        "SELECT *, sum(CASE WHEN reach IS NULL OR epoch_us(began) - epoch_us(reach) > "
        f"{_LONGEST} THEN 1 ELSE 0 END) OVER ({window} ROWS UNBOUNDED PRECEDING) AS run "
        f"FROM ({reach}) AS reached"
    )
    return (
        "SELECT project_id, timestamp, visitor, min(began) AS began, max(ended) AS ended, "
        f"sum(events)::BIGINT AS events FROM ({runs}) AS runs "
        "GROUP BY project_id, timestamp, visitor, run"
    )


def create(con: duckdb.DuckDBPyConnection) -> bool:
    """Create the tables if any is missing or of another shape (a Roost before this one: they
    are made from the events, so rebuilt rather than altered); whether they were (then
    `fill` them, or copy them whole)."""
    shapes = ((PRESENCE, PRESENCE_COLUMNS), (SPANS, SPAN_COLUMNS), (ROLLED, (_ROLLED_COLUMN,)))
    for table, columns in shapes:
        found = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'roost' AND table_name = ? ORDER BY column_index",
            [table.split(".")[1]],
        ).fetchall()
        if [name for (name,) in found] != [c.name for c in columns]:
            break
    else:
        return False
    drop(con)
    for table, columns in shapes:
        declared = ", ".join(f'"{c.name}" {c.duckdb}' for c in columns)
        con.execute(f"CREATE TABLE {table} ({declared})")
    return True


def drop(con: duckdb.DuckDBPyConnection) -> None:
    for table in (PRESENCE, SPANS, ROLLED):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def rolled(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(f"SELECT rolled FROM {ROLLED}").fetchone()
    return int(row[0]) if row else 0


def presence(project_id: int) -> str:
    """A relation of the project's presence rows: those kept, and those of the events past
    `rolled` made now (with the identity links as they are), read in one snapshot."""
    pid = int(project_id)
    kept = ", ".join(f'"{c.name}"' for c in PRESENCE_COLUMNS)
    return (
        f"(SELECT *, coalesce(linked, who) AS person FROM (SELECT {kept} FROM {PRESENCE} "
        f"WHERE project_id = {pid} UNION ALL {_PRESENCE_OF} WHERE e.project_id = {pid} "
        f"AND e.log_offset > {_ROLLED}{_PRESENCE_GROUPS}) AS presence)"
    )


def spans(project_id: int) -> str:
    """A relation of the project's visit spans: those kept, and those of the events past
    `rolled` made now."""
    pid = int(project_id)
    return (
        f"(SELECT project_id, timestamp, visitor, began, ended, events FROM {SPANS} "
        f"WHERE project_id = {pid} UNION ALL "
        f"{_halves(f'project_id = {pid} AND log_offset > {_ROLLED}')})"
    )


def _halves(which: str) -> str:
    """Spans of the events `which` (a condition on `e`) selects, one per visitor and half
    hour: two events of a visitor in one half hour are less than 30 minutes apart, so in one
    visit — no sort (a merge makes them runs)."""
    return (
        "SELECT project_id, date_trunc('hour', half) AS timestamp, visitor, "
        "min(timestamp) AS began, max(timestamp) AS ended, count(*) AS events FROM ("
        f"SELECT *, time_bucket(INTERVAL 30 MINUTE, timestamp) AS half FROM {EVENTS} e "
        f"WHERE {which} AND visitor IS NOT NULL AND NOT coalesce(bot, 1 = 0)) AS new "
        "GROUP BY project_id, visitor, half"
    )


def _spans_of(which: str) -> str:
    """The runs of the events `which` (a condition on `e`) selects: their half hours' spans,
    made one where they touch."""
    return _runs(f"({_halves(which)})")


def fill(con: duckdb.DuckDBPyConnection) -> None:
    """Make the (new) tables' rows from every event (a database from before them)."""
    con.execute(f"INSERT INTO {PRESENCE} {_PRESENCE_OF}{_PRESENCE_GROUPS}")
    con.execute(f"INSERT INTO {SPANS} {_spans_of('1 = 1')}")
    con.execute(f"INSERT INTO {ROLLED} SELECT coalesce(max(log_offset), 0) FROM {EVENTS}")


def roll(
    con: duckdb.DuckDBPyConnection, upto: int, links: Mapping[tuple[int, str], str]
) -> list[tuple[datetime, int]]:
    """Roll the events past `rolled` up to the offset `upto` into the rows, `links` being the
    identity links (what IDENTITIES holds); how many presence rows each hour got."""
    new = f"e.log_offset > {_ROLLED} AND e.log_offset <= {int(upto)}"
    # The links of these events' ids only: a join with every link reads them all (~8 ms at
    # 100,000 links, however few the events)
    found: list[tuple[int, str, str]] = []
    if links:
        ids = con.execute(f"SELECT DISTINCT project_id, {_WHO} FROM {EVENTS} e WHERE {new}")
        found = [(p, who, links[p, who]) for p, who in ids.fetchall() if (p, who) in links]
    if found:
        con.register("roost_links", links_table(found))
    try:
        inserted = con.sql(
            f"INSERT INTO {PRESENCE} {_presence_of('roost_links' if found else None)} "
            f"WHERE {new}{_PRESENCE_GROUPS} "
            "RETURNING timestamp"
        )
        assert inserted is not None  # RETURNING: the rows' hours, as Arrow (no Python per row)
        hours = inserted.to_arrow_table()
    finally:
        if found:
            con.unregister("roost_links")
    con.execute(f"INSERT INTO {SPANS} {_halves(new)}")
    con.execute(f"UPDATE {ROLLED} SET rolled = {int(upto)}")
    counted = pc.value_counts(hours.column(0)).to_pylist()
    return [(c["values"], c["counts"]) for c in counted]


def links_table(rows: Sequence[tuple[int, str, str]]) -> pa.Table:
    """Identity links (project_id, alias, user_id) as the Arrow table IDENTITIES is made of."""
    return pa.table(
        {
            "project_id": pa.array([r[0] for r in rows], pa.int32()),
            "alias": pa.array([r[1] for r in rows], pa.string()),
            "user_id": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def merge(con: duckdb.DuckDBPyConnection, hours: Sequence[datetime]) -> list[tuple[datetime, int]]:
    """Make the rows of these hours one per group; how many presence rows each has now."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_hours AS SELECT unnest(?::TIMESTAMP[]) AS hour",
        [list(hours)],
    )
    which = "timestamp IN (SELECT hour FROM roost_hours)"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_merged AS "
        f"SELECT {_PRESENCE_KEYS}, sum(events)::BIGINT AS events FROM {PRESENCE} "
        f"WHERE {which}{_PRESENCE_GROUPS}"
    )
    merged_spans = _runs(f"(SELECT * FROM {SPANS} WHERE {which})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE roost_merged_spans AS {merged_spans}")
    con.execute(f"DELETE FROM {PRESENCE} WHERE {which}")
    con.execute(f"DELETE FROM {SPANS} WHERE {which}")
    con.execute(f"INSERT INTO {PRESENCE} SELECT * FROM roost_merged")
    con.execute(f"INSERT INTO {SPANS} SELECT * FROM roost_merged_spans")
    return [
        (hour, int(rows))
        for hour, rows in con.execute(
            "SELECT timestamp, count(*) FROM roost_merged GROUP BY 1"
        ).fetchall()
    ]


def relink(con: duckdb.DuckDBPyConnection, links: str, presence: bool = True) -> None:
    """Make the identity links those of the relation `links` (project_id, alias, user_id),
    and (if kept) the presence rows of every id whose link changed follow."""
    if presence:  # the ids whose link is new, gone or changed
        con.execute(
            "CREATE OR REPLACE TEMP TABLE roost_relinked AS SELECT project_id, alias FROM "
            f"((SELECT * FROM {IDENTITIES} EXCEPT SELECT * FROM {links}) UNION "
            f"(SELECT * FROM {links} EXCEPT SELECT * FROM {IDENTITIES}))"
        )
    con.execute(f"DELETE FROM {IDENTITIES}")
    con.execute(f"INSERT INTO {IDENTITIES} SELECT * FROM {links}")
    if not presence:
        return
    con.execute(
        f"UPDATE {PRESENCE} AS p SET linked = l.user_id FROM "
        f"(SELECT r.project_id, r.alias, i.user_id FROM roost_relinked r "
        f"LEFT JOIN {IDENTITIES} i ON i.project_id = r.project_id AND i.alias = r.alias) "
        "AS l WHERE p.project_id = l.project_id AND p.who = l.alias"
    )


def erased_hours(con: duckdb.DuckDBPyConnection, condition: str, params: list[object]) -> None:
    """Note the hours of the events about to be erased (`condition` selects them)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_erased_hours AS SELECT DISTINCT "
        f"date_trunc('hour', timestamp) AS hour FROM {EVENTS} WHERE {condition}",
        params,
    )


def remake(con: duckdb.DuckDBPyConnection, project_id: int) -> None:
    """Make the project's rows of the hours `erased_hours` noted again from the events left
    (those rolled up)."""
    pid = int(project_id)
    hours = "(SELECT hour FROM roost_erased_hours)"
    for table in (PRESENCE, SPANS):
        con.execute(f"DELETE FROM {table} WHERE project_id = {pid} AND timestamp IN {hours}")
    which = (
        f"e.project_id = {pid} AND date_trunc('hour', e.timestamp) IN {hours} "
        f"AND e.log_offset <= {_ROLLED}"  # the events past it are counted as they are
    )
    con.execute(f"INSERT INTO {PRESENCE} {_PRESENCE_OF} WHERE {which}{_PRESENCE_GROUPS}")
    con.execute(f"INSERT INTO {SPANS} {_spans_of(which)}")
