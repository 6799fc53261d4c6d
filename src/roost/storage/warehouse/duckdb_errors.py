"""The DuckDB Warehouse's error hours (storage/warehouse/schema.py's ERROR_COLUMNS), kept per UTC
hour as its presence rows are (duckdb_hourly.py): the errors report's occurrences, names, builds
and first and last times, read from a few rows an hour. Identity links change none of them:
they count events, not people.
"""

from __future__ import annotations

from roost.storage.warehouse.duckdb_hourly import Hourly
from roost.storage.warehouse.duckdb_seen import value_of
from roost.storage.warehouse.schema import ERROR_COLUMNS, ERROR_KEYS, SEEN_DIMENSIONS

EVENTS = "roost.events"
ERRORS = "roost.error_hours"
# a signature as the players' last-seen rows keep it (the report joins them on it)
_SIGNATURE = value_of(SEEN_DIMENSIONS["error"])
_GROUPS = ", ".join(str(n) for n in range(1, len(ERROR_KEYS) + 1))


def _of(where: str) -> str:
    """The rows of the error events among those `where` (a condition on `e`) selects."""
    return (
        f"SELECT e.project_id, date_trunc('hour', e.timestamp), {_SIGNATURE}, e.event, e.build, "
        f"count(*), min(e.timestamp), max(e.timestamp) FROM {EVENTS} e "
        f"WHERE ({where}) AND e.category = 'error' GROUP BY {_GROUPS}"
    )


HOURLY = Hourly(
    ERRORS,
    "roost.error_hours_held",
    ERROR_COLUMNS,
    _of,
    len(ERROR_KEYS),
    "sum(events)::BIGINT AS events, min(first) AS first, max(last) AS last",
)


def error_hours(project_id: int) -> str:
    """A relation of the project's error hours."""
    return f"(SELECT * FROM {ERRORS} WHERE project_id = {int(project_id)})"
