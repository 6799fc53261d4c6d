"""The rows the DuckDB Warehouse keeps beside its events so reports count less: presence and
visit spans (storage/warehouse/schema.py declares them, query/rollup.py says which reports read
them). Each function runs inside the caller's transaction, so they never disagree with the
events: made from each load's new events, merged an hour at a time, re-resolved when identity
links change, made again from the events of the hours an erasure touched.
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
)

EVENTS = "roost.events"
IDENTITIES = "roost.identities"
PRESENCE = "roost.presence"
SPANS = "roost.visit_spans"

_WHO = "coalesce(e.user_id, e.anonymous_id)"
_PRESENCE_VALUES = {
    "timestamp": "date_trunc('hour', e.timestamp)",
    "who": _WHO,
    "linked": "i.user_id",
    "events": "count(*)",
}


def _presence_of(links: str | None) -> str:
    """The presence rows of events, … WHERE <which events> GROUP BY: with the identity links
    of the relation `links` (project_id, alias, user_id), or none."""
    if links is None:
        return (
            "SELECT "
            + ", ".join(
                f'{_PRESENCE_VALUES.get(c.name, f"e.{c.name}")} AS "{c.name}"'
                if c.name != "linked"
                else 'NULL AS "linked"'
                for c in PRESENCE_COLUMNS
            )
            + f" FROM {EVENTS} e"
        )
    return (
        "SELECT "
        + ", ".join(
            f'{_PRESENCE_VALUES.get(c.name, f"e.{c.name}")} AS "{c.name}"' for c in PRESENCE_COLUMNS
        )
        + f" FROM {EVENTS} e LEFT JOIN {links} i ON i.project_id = e.project_id "
        f"AND i.alias = {_WHO}"
    )


_PRESENCE_OF = _presence_of(IDENTITIES)
_PRESENCE_GROUPS = " GROUP BY " + ", ".join(str(n) for n in range(1, len(PRESENCE_KEYS) + 1))
_PRESENCE_KEYS = ", ".join(f'"{c.name}"' for c in PRESENCE_KEYS)

_LONGEST = VISIT_GAP_SECONDS * 1_000_000  # µs, as query/stats.py's visits count gaps
_HOUR = "PARTITION BY project_id, timestamp, visitor"


def _spans_of(which: str) -> str:
    """Each visitor's runs of events in an hour with no gap over 30 minutes, of the events
    `which` selects (a condition on `e`)."""
    gaps = (
        "SELECT project_id, date_trunc('hour', e.timestamp) AS timestamp, visitor, "
        "e.timestamp AS t, epoch_us(e.timestamp) - lag(epoch_us(e.timestamp)) OVER ("
        "PARTITION BY project_id, date_trunc('hour', e.timestamp), visitor ORDER BY e.timestamp"
        f") AS gap FROM {EVENTS} e WHERE ({which}) AND visitor IS NOT NULL "
        "AND NOT coalesce(bot, 1 = 0)"
    )
    runs = (
        f"SELECT *, sum(CASE WHEN gap IS NULL OR gap > {_LONGEST} THEN 1 ELSE 0 END) OVER ("
        f"{_HOUR} ORDER BY t ROWS UNBOUNDED PRECEDING) AS run FROM ({gaps}) AS gaps"
    )
    return (
        "SELECT project_id, timestamp, visitor, min(t) AS began, max(t) AS ended, "
        f"count(*) AS events FROM ({runs}) AS runs GROUP BY project_id, timestamp, visitor, run"
    )


def _spans_merged(which: str) -> str:
    """The spans `which` selects, those of one visitor and hour that touch or overlap made one
    (spans of different loads may)."""
    window = f"{_HOUR} ORDER BY began, ended"
    reach = (
        f"SELECT *, max(ended) OVER ({window} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
        f"AS reach FROM {SPANS} WHERE {which}"
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


def create(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create the tables that are missing or of another shape (a Roost before this one: they
    are made from the events, so rebuilt rather than altered); the names of those made."""
    made = []
    for table, columns in ((PRESENCE, PRESENCE_COLUMNS), (SPANS, SPAN_COLUMNS)):
        found = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'roost' AND table_name = ? ORDER BY column_index",
            [table.split(".")[1]],
        ).fetchall()
        if [name for (name,) in found] == [c.name for c in columns]:
            continue
        declared = ", ".join(f'"{c.name}" {c.duckdb}' for c in columns)
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TABLE {table} ({declared})")
        made.append(table)
    return made


def drop(con: duckdb.DuckDBPyConnection) -> None:
    for table in (PRESENCE, SPANS):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def fill(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> None:
    """Make these (new) tables' rows from every event (a database from before them)."""
    if PRESENCE in tables:
        con.execute(f"INSERT INTO {PRESENCE} {_PRESENCE_OF}{_PRESENCE_GROUPS}")
    if SPANS in tables:
        con.execute(f"INSERT INTO {SPANS} {_spans_of('1 = 1')}")


def add(
    con: duckdb.DuckDBPyConnection, after_offset: int, links: Mapping[tuple[int, str], str]
) -> list[tuple[datetime, int]]:
    """Rows for the events loaded after `after_offset`, `links` being the identity links
    (what `IDENTITIES` holds); how many presence rows each hour got."""
    new = f"log_offset > {int(after_offset)}"
    # The links of this load's ids only: a join with every link reads them all (~8 ms a
    # load at 100,000 links, whatever the load's size)
    found: list[tuple[int, str, str]] = []
    if links:
        ids = con.execute(
            f"SELECT DISTINCT project_id, {_WHO} FROM {EVENTS} e WHERE e.{new}"
        ).fetchall()
        found = [(p, who, links[p, who]) for p, who in ids if (p, who) in links]
    if found:
        con.register("roost_links", links_table(found))
    try:
        inserted = con.sql(
            f"INSERT INTO {PRESENCE} {_presence_of('roost_links' if found else None)} "
            f"WHERE e.{new}{_PRESENCE_GROUPS} RETURNING timestamp"
        )
        assert inserted is not None  # RETURNING: the rows' hours, as Arrow (no Python per row)
        hours = inserted.to_arrow_table()
    finally:
        if found:
            con.unregister("roost_links")
    # Any two events of a visitor in one half hour are less than 30 minutes apart, so in one
    # visit: a span each, without sorting (a merge makes them runs)
    con.execute(
        f"INSERT INTO {SPANS} SELECT project_id, date_trunc('hour', half), visitor, "
        "min(timestamp), max(timestamp), count(*) FROM (SELECT *, time_bucket(INTERVAL 30 "
        f"MINUTE, timestamp) AS half FROM {EVENTS} WHERE {new} AND visitor IS NOT NULL "
        "AND NOT coalesce(bot, 1 = 0)) AS new GROUP BY project_id, visitor, half"
    )
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
    con.execute(f"CREATE OR REPLACE TEMP TABLE roost_merged_spans AS {_spans_merged(which)}")
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
    if not presence:
        con.execute(f"DELETE FROM {IDENTITIES}")
        con.execute(f"INSERT INTO {IDENTITIES} SELECT * FROM {links}")
        return
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_relinked AS SELECT project_id, alias FROM "
        f"((SELECT * FROM {IDENTITIES} EXCEPT SELECT * FROM {links}) UNION "
        f"(SELECT * FROM {links} EXCEPT SELECT * FROM {IDENTITIES}))"
    )
    con.execute(f"DELETE FROM {IDENTITIES}")
    con.execute(f"INSERT INTO {IDENTITIES} SELECT * FROM {links}")
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
    """Make the project's rows of the hours `erased_hours` noted again from the events left."""
    pid = int(project_id)
    hours = "(SELECT hour FROM roost_erased_hours)"
    for table in (PRESENCE, SPANS):
        con.execute(f"DELETE FROM {table} WHERE project_id = {pid} AND timestamp IN {hours}")
    which = f"e.project_id = {pid} AND date_trunc('hour', e.timestamp) IN {hours}"
    con.execute(f"INSERT INTO {PRESENCE} {_PRESENCE_OF} WHERE {which}{_PRESENCE_GROUPS}")
    con.execute(f"INSERT INTO {SPANS} {_spans_of(which)}")
