"""The DuckDB Warehouse's hourly counts (storage/warehouse/schema.py's COUNT_COLUMNS), kept as
its presence rows are (storage/warehouse/duckdb_rollups.py, whose transactions these functions
run in): the events of each roll added as rows of their hours, an hour's rows merged into one
per group with its presence rows, and the rows of the hours an erasure touches made again from
the events left. Identity links change none of them: they count events, not people.
"""

from __future__ import annotations

import duckdb

from roost.storage.warehouse.duckdb_tables import dropped, made, remade
from roost.storage.warehouse.schema import COUNT_COLUMNS, COUNT_KEYS, Column

EVENTS = "roost.events"
COUNTS = "roost.counts"
# One row: the rollups' offset the rows hold the events up to — the same unless a Roost from
# before them rolled events up meanwhile: the rows are then made again
HELD = "roost.counts_held"
_TABLES = ((COUNTS, COUNT_COLUMNS), (HELD, (Column("held", "BIGINT"),)))
_KEYS = ", ".join(f'"{c.name}"' for c in COUNT_KEYS)
_GROUPS = ", ".join(str(n) for n in range(1, len(COUNT_KEYS) + 1))
_OF_EVENTS = ", ".join(
    "date_trunc('hour', e.timestamp)" if c.name == "timestamp" else f"e.{c.name}"
    for c in COUNT_KEYS
)


def _of(where: str) -> str:
    """The rows of the events `where` (a condition on `e`) selects."""
    return (
        f"SELECT {_OF_EVENTS}, count(*), sum(CASE WHEN e.value > 0 THEN e.value END) "
        f"FROM {EVENTS} e WHERE {where} GROUP BY {_GROUPS}"
    )


def create(con: duckdb.DuckDBPyConnection, rolled: str) -> bool:
    """Create the tables if missing, of another shape, or behind the rollups' offset `rolled`
    (SQL); whether they were (then `fill` them)."""
    return remade(con, _TABLES, f"SELECT held = {rolled} FROM {HELD}")


def make(con: duckdb.DuckDBPyConnection) -> None:
    """Make the tables anew, empty (then `fill` them)."""
    made(con, _TABLES)


def drop(con: duckdb.DuckDBPyConnection) -> None:
    dropped(con, _TABLES)


def fill(con: duckdb.DuckDBPyConnection, upto: str) -> None:
    """Make the rows of every event up to the offset `upto` (SQL)."""
    con.execute(f"INSERT INTO {COUNTS} {_of(f'e.log_offset <= {upto}')}")
    con.execute(f"INSERT INTO {HELD} SELECT {upto}")


def roll(con: duckdb.DuckDBPyConnection, new: str, upto: int) -> None:
    """Add the rows of the `new` events (a condition on `e`: those after the offset held, up
    to `upto`)."""
    con.execute(f"INSERT INTO {COUNTS} {_of(new)}")
    con.execute(f"UPDATE {HELD} SET held = {int(upto)}")


def merge(con: duckdb.DuckDBPyConnection, which: str) -> None:
    """Make the rows of the hours `which` (a condition on `timestamp`) one per group."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE roost_counts_merged AS SELECT {_KEYS}, sum(events)::BIGINT "
        f"AS events, sum(moved) AS moved FROM {COUNTS} WHERE {which} GROUP BY {_GROUPS}"
    )
    con.execute(f"DELETE FROM {COUNTS} WHERE {which}")
    con.execute(f"INSERT INTO {COUNTS} SELECT * FROM roost_counts_merged")


def remake(con: duckdb.DuckDBPyConnection, project_id: int, hours: str, upto: str) -> None:
    """Make the project's rows of the `hours` (a relation of `hour`s) again from the events
    up to the offset `upto` (SQL)."""
    pid = int(project_id)
    con.execute(f"DELETE FROM {COUNTS} WHERE project_id = {pid} AND timestamp IN {hours}")
    which = (
        f"e.project_id = {pid} AND date_trunc('hour', e.timestamp) IN {hours} "
        f"AND e.log_offset <= {upto}"
    )
    con.execute(f"INSERT INTO {COUNTS} {_of(which)}")


def counts(project_id: int) -> str:
    """A relation of the project's hourly counts."""
    return f"(SELECT * FROM {COUNTS} WHERE project_id = {int(project_id)})"
