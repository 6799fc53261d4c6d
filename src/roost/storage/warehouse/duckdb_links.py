"""Identity links (project_id, alias, user_id) as DuckDB relations, for the rollups a load rolls
up (storage/warehouse/duckdb_rollups.py, duckdb_seen.py) and the copy the Warehouse keeps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import duckdb
import pyarrow as pa

EVENTS = "roost.events"
_WHO = "coalesce(e.user_id, e.anonymous_id)"


def links_table(rows: Sequence[tuple[int, str, str]]) -> pa.Table:
    """Identity links (project_id, alias, user_id) as the Arrow table IDENTITIES is made of."""
    return pa.table(
        {
            "project_id": pa.array([r[0] for r in rows], pa.int32()),
            "alias": pa.array([r[1] for r in rows], pa.string()),
            "user_id": pa.array([r[2] for r in rows], pa.string()),
        }
    )


@contextmanager
def links_of(
    con: duckdb.DuckDBPyConnection, new: str, links: Mapping[tuple[int, str], str]
) -> Iterator[str | None]:
    """The identity links (`links`: what IDENTITIES holds) of the ids of the events `new` (a
    condition on `e`) selects, as a relation while in use; None when none is linked. A join
    with every link reads them all (~8 ms at 100,000 links, however few the events)."""
    found: list[tuple[int, str, str]] = []
    if links:
        ids = con.execute(f"SELECT DISTINCT project_id, {_WHO} FROM {EVENTS} e WHERE {new}")
        found = [(p, who, links[p, who]) for p, who in ids.fetchall() if (p, who) in links]
    if not found:
        yield None
        return
    con.register("roost_links", links_table(found))
    try:
        yield "roost_links"
    finally:
        con.unregister("roost_links")
