"""The shapes of the tables the DuckDB Warehouse keeps beside its events (the rollups:
storage/warehouse/duckdb_rollups.py, duckdb_seen.py, duckdb_sessions.py): derived from the
events, so a table missing or of another shape (a Roost before this one) is made anew and
filled, never altered."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from roost.storage.warehouse.schema import Column

Tables = Sequence[tuple[str, Sequence[Column]]]  # (roost.<name>, its columns) of each


def remade(
    con: duckdb.DuckDBPyConnection, tables: Tables, current: str, params: Sequence[object] = ()
) -> bool:
    """Whether these tables were made anew, empty (then to be filled): when any is missing
    or of another shape, or the query `current` does not say true (the rows are behind)."""
    if shaped(con, tables) and con.execute(current, list(params)).fetchall() == [(True,)]:
        return False
    made(con, tables)
    return True


def dropped(con: duckdb.DuckDBPyConnection, tables: Tables) -> None:
    for table, _ in tables:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def made(con: duckdb.DuckDBPyConnection, tables: Tables) -> None:
    """Make these tables (roost.<name>, its columns) anew, empty."""
    dropped(con, tables)
    for table, columns in tables:
        declared = ", ".join(f'"{c.name}" {c.duckdb}' for c in columns)
        con.execute(f"CREATE TABLE {table} ({declared})")


def shaped(con: duckdb.DuckDBPyConnection, tables: Tables) -> bool:
    """Whether each of these tables is there with these columns."""
    return all(table_columns(con, t) == [c.name for c in columns] for t, columns in tables)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of the table `table` (roost.<name>) in order; none if it is missing."""
    found = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'roost' AND table_name = ? ORDER BY column_index",
        [table.split(".")[1]],
    ).fetchall()
    return [name for (name,) in found]
