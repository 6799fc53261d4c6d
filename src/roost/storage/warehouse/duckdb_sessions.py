"""The DuckDB Warehouse's session hours (storage/warehouse/schema.py's SESSION_HOUR_COLUMNS),
kept as its presence rows are (storage/warehouse/duckdb_rollups.py, whose transactions these
functions run in): the events of each roll added as rows of their hours, an hour's rows merged
into one per session with its presence rows, and the rows of the hours an erasure touches made
again from the events left.

The sessions report then reads a few rows per session instead of all its events: grouping
4.9 M game events of 454,000 sessions took ~120 ms, the page asks it three times.
"""

from __future__ import annotations

import duckdb

from roost.storage.warehouse.duckdb_tables import dropped, made, remade
from roost.storage.warehouse.schema import SESSION_HOUR_COLUMNS, SESSION_MERGED, Column

EVENTS = "roost.events"
SESSIONS = "roost.session_hours"
# One row: the rollups' offset the rows hold the events up to — the same unless a Roost from
# before them rolled events up meanwhile: the rows are then made again
HELD = "roost.session_hours_held"
_NAMES = [c.name for c in SESSION_HOUR_COLUMNS]
_TABLES = ((SESSIONS, SESSION_HOUR_COLUMNS), (HELD, (Column("held", "BIGINT"),)))
_GAME = "e.session_id IS NOT NULL AND e.build IS NOT NULL"  # a game session's event
_OF_EVENTS = {  # each column of an hour's row, from its events
    "project_id": "e.project_id",
    "timestamp": "date_trunc('hour', e.timestamp)",
    "session_id": "e.session_id",
    "started": "min(CASE WHEN e.event = 'Session:Start' THEN e.timestamp END)",
    "ended": "max(CASE WHEN e.event = 'Session:End' THEN e.timestamp END)",
    "first_seen": "min(e.timestamp)",
    "last_seen": "max(e.timestamp)",
    "events": "count(*)",
    **{name: f"min(e.{name})" for name in ("build", "dim1", "dim2", "dim3")},
}


def _of(where: str) -> str:
    """The rows of the events `where` (a condition on `e`) selects."""
    values = ", ".join(f'{_OF_EVENTS[name]} AS "{name}"' for name in _NAMES)
    return f"SELECT {values} FROM {EVENTS} e WHERE ({where}) AND {_GAME} GROUP BY 1, 2, 3"


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
    con.execute(f"INSERT INTO {SESSIONS} {_of(f'e.log_offset <= {upto}')}")
    con.execute(f"INSERT INTO {HELD} SELECT {upto}")


def roll(con: duckdb.DuckDBPyConnection, new: str, upto: int) -> None:
    """Add the rows of the `new` events (a condition on `e`: those after the offset held, up
    to `upto`)."""
    con.execute(f"INSERT INTO {SESSIONS} {_of(new)}")
    con.execute(f"UPDATE {HELD} SET held = {int(upto)}")


def merge(con: duckdb.DuckDBPyConnection, which: str) -> None:
    """Make the rows of the hours `which` (a condition on `timestamp`) one per session."""
    merged = ", ".join(f'{SESSION_MERGED[name]} AS "{name}"' for name in _NAMES[3:])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_sessions_merged AS SELECT project_id, timestamp, "
        f"session_id, {merged} FROM {SESSIONS} WHERE {which} GROUP BY 1, 2, 3"
    )
    con.execute(f"DELETE FROM {SESSIONS} WHERE {which}")
    con.execute(f"INSERT INTO {SESSIONS} SELECT * FROM roost_sessions_merged")


def remake(con: duckdb.DuckDBPyConnection, project_id: int, hours: str, upto: str) -> None:
    """Make the project's rows of the `hours` (a relation of `hour`s) again from the events
    up to the offset `upto` (SQL)."""
    pid = int(project_id)
    con.execute(f"DELETE FROM {SESSIONS} WHERE project_id = {pid} AND timestamp IN {hours}")
    which = (
        f"e.project_id = {pid} AND date_trunc('hour', e.timestamp) IN {hours} "
        f"AND e.log_offset <= {upto}"
    )
    con.execute(f"INSERT INTO {SESSIONS} {_of(which)}")


def session_hours(project_id: int) -> str:
    """A relation of the project's session hours."""
    return f"(SELECT * FROM {SESSIONS} WHERE project_id = {int(project_id)})"
