"""The DuckDB Warehouse's hourly counts (storage/warehouse/schema.py's COUNT_COLUMNS), kept per
UTC hour as its presence rows are (duckdb_hourly.py). Identity links change none of them: they
count events, not people.
"""

from __future__ import annotations

from roost.storage.warehouse.duckdb_hourly import Hourly
from roost.storage.warehouse.schema import COUNT_COLUMNS, COUNT_KEYS

EVENTS = "roost.events"
COUNTS = "roost.counts"
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


HOURLY = Hourly(
    COUNTS,
    "roost.counts_held",
    COUNT_COLUMNS,
    _of,
    len(COUNT_KEYS),
    "sum(events)::BIGINT AS events, sum(moved) AS moved",
)


def counts(project_id: int) -> str:
    """A relation of the project's hourly counts (with `tally`: query/rollup.py says why)."""
    return f"(SELECT *, events AS tally FROM {COUNTS} WHERE project_id = {int(project_id)})"
