"""The DuckDB Warehouse's session hours (storage/warehouse/schema.py's SESSION_HOUR_COLUMNS),
kept per UTC hour as its presence rows are (duckdb_hourly.py): an hour's rows merged into one
per session.

The sessions report then reads a few rows per session instead of all its events: grouping
4.9 M game events of 454,000 sessions took ~120 ms, the page asks it three times.

Each session's hours are also kept merged into one row (SESSION_ROW_COLUMNS), with the last-seen
rows (storage/warehouse/duckdb_seen.py: at their offset, merged when they are, and made again
for the sessions an erasure touches): a range then reads the rows of the sessions wholly in it
and merges the hours of only those it cuts.
"""

from __future__ import annotations

import duckdb

from roost.storage.warehouse.duckdb_hourly import Hourly
from roost.storage.warehouse.schema import (
    SESSION_HOUR_COLUMNS,
    SESSION_MERGE,
    SESSION_MERGED,
    SESSION_ROW_COLUMNS,
)

EVENTS = "roost.events"
SESSIONS = "roost.session_hours"
HELD = "roost.session_hours_held"  # the offset they hold the events up to (duckdb_hourly.py)
ROWS = "roost.session_rows"  # each session's hours merged (kept by duckdb_seen.py)
_NAMES = [c.name for c in SESSION_HOUR_COLUMNS]
_ROW_NAMES = [c.name for c in SESSION_ROW_COLUMNS]
ROW_TABLE = (ROWS, SESSION_ROW_COLUMNS)
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


_MERGED_HOURS = ", ".join(f'{SESSION_MERGED[name]} AS "{name}"' for name in _NAMES[3:])
HOURLY = Hourly(SESSIONS, HELD, SESSION_HOUR_COLUMNS, _of, 3, _MERGED_HOURS)  # per session


def session_hours(project_id: int) -> str:
    """A relation of the project's session hours."""
    return f"(SELECT * FROM {SESSIONS} WHERE project_id = {int(project_id)})"


def _rows_of(where: str, events: str = EVENTS) -> str:
    """The session rows of the events `where` (a condition on `e`) selects of `events`."""
    values = {
        **_OF_EVENTS,
        "first_hour": "min(date_trunc('hour', e.timestamp))",
        "last_hour": "max(date_trunc('hour', e.timestamp))",
    }
    listed = ", ".join(f'{values[name]} AS "{name}"' for name in _ROW_NAMES)
    return f"SELECT {listed} FROM {events} e WHERE ({where}) AND {_GAME} GROUP BY 1, 2"


def fill_rows(con: duckdb.DuckDBPyConnection, upto: str) -> None:
    """Make the session rows of every event up to the offset `upto` (SQL)."""
    con.execute(f"INSERT INTO {ROWS} {_rows_of(f'e.log_offset <= {upto}')}")


_PAIRWISE = {"min": "least", "max": "greatest"}  # which pass over NULLs, as min and max do
# a kept row `s` and the new events' `n` of the same session, made one
_JOINED = {
    "first_hour": "least(s.first_hour, n.first_hour)",
    "last_hour": "greatest(s.last_hour, n.last_hour)",
    **{
        name: f"s.{name} + n.{name}" if how == "sum" else f"{_PAIRWISE[how]}(s.{name}, n.{name})"
        for name, how in SESSION_MERGE.items()
    },
}


def merge_rows(con: duckdb.DuckDBPyConnection, new: str) -> None:
    """Merge the sessions of the events `new` (a condition on `e`) selects into their rows.

    The new rows are made first: a MERGE from a query joins every kept row even when the
    query has none (~35 ms at 450,000 sessions, each report's roll), from a table of a few
    ~6 ms, and none is skipped."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE roost_session_rows_new AS {_rows_of(new)}")
    if not con.execute("SELECT 1 FROM roost_session_rows_new LIMIT 1").fetchall():
        return
    updated = ", ".join(f'"{name}" = {value}' for name, value in _JOINED.items())
    inserted = ", ".join(f"n.{name}" for name in _ROW_NAMES)
    con.execute(
        f"MERGE INTO {ROWS} s USING roost_session_rows_new AS n "
        "ON s.project_id = n.project_id AND s.session_id = n.session_id "
        f"WHEN MATCHED THEN UPDATE SET {updated} WHEN NOT MATCHED THEN INSERT VALUES ({inserted})"
    )


def remake_rows(con: duckdb.DuckDBPyConnection, noted: str, upto: str) -> None:
    """Make the rows of the sessions of `noted` (a table of project_id, session_id), if
    any, again from their events up to the offset `upto` (SQL)."""
    if not con.execute(f"SELECT 1 FROM {noted} LIMIT 1").fetchall():
        return
    con.execute(
        f"DELETE FROM {ROWS} s USING {noted} n "
        "WHERE s.project_id = n.project_id AND s.session_id = n.session_id"
    )
    among = (
        f"(SELECT e.* FROM {EVENTS} e SEMI JOIN {noted} AS d "
        "ON d.project_id = e.project_id AND d.session_id = e.session_id)"
    )
    con.execute(f"INSERT INTO {ROWS} {_rows_of(f'e.log_offset <= {upto}', among)}")


def session_rows(project_id: int) -> str:
    """A relation of the project's session rows."""
    return f"(SELECT * FROM {ROWS} WHERE project_id = {int(project_id)})"
