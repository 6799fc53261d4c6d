"""Rows the DuckDB Warehouse keeps per UTC hour beside its presence rows (the session hours of
duckdb_sessions.py, the counts of duckdb_counts.py), kept as the presence rows are
(storage/warehouse/duckdb_rollups.py, whose transactions these methods run in): the events of
each roll added as rows of their hours, an hour's rows merged into one per group with its
presence rows, and the rows of the hours an erasure touches made again from the events left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb

from roost.storage.warehouse.duckdb_tables import dropped, made, remade
from roost.storage.warehouse.schema import Column


@dataclass(frozen=True)
class Hourly:
    table: str  # roost.<name>
    # One row: the rollups' offset the rows hold the events up to — the same unless a Roost
    # from before them rolled events up meanwhile: the rows are then made again
    held: str
    columns: Sequence[Column]
    of: Callable[[str], str]  # the SELECT of the rows of the events a condition on `e` selects
    keys: int  # how many of `columns`, the first, a group is of (the hour's among them)
    merged: str  # the SELECT list of the others, a group's rows made one

    @property
    def _tables(self) -> tuple[tuple[str, Sequence[Column]], ...]:
        return ((self.table, self.columns), (self.held, (Column("held", "BIGINT"),)))

    def create(self, con: duckdb.DuckDBPyConnection, rolled: str) -> bool:
        """Create the tables if missing, of another shape, or behind the rollups' offset
        `rolled` (SQL); whether they were (then `fill` them)."""
        return remade(con, self._tables, f"SELECT held = {rolled} FROM {self.held}")

    def make(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make the tables anew, empty (then `fill` them)."""
        made(con, self._tables)

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        dropped(con, self._tables)

    def fill(self, con: duckdb.DuckDBPyConnection, upto: str) -> None:
        """Make the rows of every event up to the offset `upto` (SQL)."""
        con.execute(f"INSERT INTO {self.table} {self.of(f'e.log_offset <= {upto}')}")
        con.execute(f"INSERT INTO {self.held} SELECT {upto}")

    def roll(self, con: duckdb.DuckDBPyConnection, new: str, upto: int) -> None:
        """Add the rows of the `new` events (a condition on `e`: those after the offset held,
        up to `upto`)."""
        con.execute(f"INSERT INTO {self.table} {self.of(new)}")
        con.execute(f"UPDATE {self.held} SET held = {int(upto)}")

    def merge(self, con: duckdb.DuckDBPyConnection, which: str) -> None:
        """Make the rows of the hours `which` (a condition on `timestamp`) one per group."""
        merged = f"roost_{self.table.split('.')[1]}_merged"
        keys = ", ".join(f'"{c.name}"' for c in self.columns[: self.keys])
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {merged} AS SELECT {keys}, {self.merged} "
            f"FROM {self.table} WHERE {which} GROUP BY ALL"
        )
        con.execute(f"DELETE FROM {self.table} WHERE {which}")
        con.execute(f"INSERT INTO {self.table} SELECT * FROM {merged}")

    def remake(
        self, con: duckdb.DuckDBPyConnection, project_id: int, hours: str, upto: str
    ) -> None:
        """Make the project's rows of the `hours` (a relation of `hour`s) again from the
        events up to the offset `upto` (SQL)."""
        pid = int(project_id)
        con.execute(f"DELETE FROM {self.table} WHERE project_id = {pid} AND timestamp IN {hours}")
        which = (
            f"e.project_id = {pid} AND date_trunc('hour', e.timestamp) IN {hours} "
            f"AND e.log_offset <= {upto}"
        )
        con.execute(f"INSERT INTO {self.table} {self.of(which)}")
