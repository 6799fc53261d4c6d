"""The few places where the Warehouses' SQL differs, one function each.

Reports (query/stats.py) are written once against this protocol; each Warehouse hands the
one that renders its SQL. Everything else in a report is the SQL both engines share
(SELECT, WHERE, GROUP BY, CASE, count(DISTINCT …), sum, avg). Values reach SQL as literals
the dialect writes (the engines escape differently), never as text pasted in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

INTERVALS = ("hour", "day", "week", "month")


class SqlDialect(Protocol):
    def events(self, project_id: int) -> str:
        """A relation of one project's events, with `person` (the user id, linked ids resolved)."""
        ...

    def rows(self, project_id: int) -> str:
        """One project's stored rows as they are (cheaper than `events` when no one is resolved)."""
        ...

    def string(self, value: str) -> str:
        """A string literal."""
        ...

    def timestamp(self, value: datetime) -> str:
        """A literal of the stored timestamps' type, from a naive UTC datetime."""
        ...

    def local(self, column: str, timezone: str) -> str:
        """A stored (naive UTC) timestamp as the naive local time of `timezone`."""
        ...

    def bucket(self, interval: str, local_time: str) -> str:
        """The start of the hour, day, week (Monday) or month a local time falls in."""
        ...

    def prop(self, column: str, key: str) -> str:
        """A top-level member of a JSON column, as text (NULL when absent)."""
        ...

    def matches(self, expression: str, pattern: str) -> str:
        """True when a regular expression (given as a literal) matches somewhere in it."""
        ...

    def contains(self, expression: str, needle: str) -> str:
        """True when the text contains the literal."""
        ...

    def seconds(self, start: str, end: str) -> str:
        """Seconds from one timestamp to another, as a number."""
        ...

    def same(self, left: str, right: str) -> str:
        """Equal, NULL matching NULL (for joining groups on their dimensions)."""
        ...

    def distinct_list(self, expression: str) -> str:
        """An aggregate: the distinct non-NULL values, sorted, as a list."""
        ...

    def before(self, expression: str, separator: str) -> str:
        """The text before the first `separator` (all of it when there is none)."""
        ...

    def after(self, expression: str, separator: str) -> str:
        """The text after the first `separator` (NULL when there is none)."""
        ...

    def visits(self, relation: str, keys: list[str], gap_seconds: int) -> str:
        """One row per visit: `keys`, `visitor`, `events`, `pageviews`, `seconds` (first to last
        event). A visit is a visitor's events in `relation` (which has `visitor`, `timestamp`,
        `type` and the keys) with no gap longer than `gap_seconds`, within each key group."""
        ...


class DuckDBDialect:
    def __init__(self, table: str, identities: str) -> None:
        self.table = table
        self.identities = identities

    def events(self, project_id: int) -> str:
        return (
            "(SELECT e.*, coalesce(i.user_id, e.user_id, e.anonymous_id) AS person "
            f"FROM {self.table} e LEFT JOIN {self.identities} i ON i.project_id = e.project_id "
            "AND i.alias = coalesce(e.user_id, e.anonymous_id) "
            f"WHERE e.project_id = {int(project_id)})"
        )

    def rows(self, project_id: int) -> str:
        return f"(SELECT * FROM {self.table} WHERE project_id = {int(project_id)})"

    def string(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def timestamp(self, value: datetime) -> str:
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S.%f}'"

    def local(self, column: str, timezone: str) -> str:
        return f"timezone({self.string(timezone)}, timezone('UTC', {column}))"

    def bucket(self, interval: str, local_time: str) -> str:
        assert interval in INTERVALS
        return f"date_trunc('{interval}', {local_time})"

    def prop(self, column: str, key: str) -> str:
        path = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"json_extract_string({column}, {self.string(path)})"

    def matches(self, expression: str, pattern: str) -> str:
        return f"regexp_matches({expression}, {pattern})"

    def contains(self, expression: str, needle: str) -> str:
        return f"contains({expression}, {needle})"

    def seconds(self, start: str, end: str) -> str:
        return f"(epoch({end}) - epoch({start}))"

    def same(self, left: str, right: str) -> str:
        return f"{left} IS NOT DISTINCT FROM {right}"

    def distinct_list(self, expression: str) -> str:
        return f"list_sort(list(DISTINCT {expression}) FILTER (WHERE {expression} IS NOT NULL))"

    def before(self, expression: str, separator: str) -> str:
        return f"split_part({expression}, {self.string(separator)}, 1)"

    def after(self, expression: str, separator: str) -> str:
        sep = self.string(separator)
        return (
            f"CASE WHEN strpos({expression}, {sep}) > 0 "
            f"THEN substr({expression}, strpos({expression}, {sep}) + {len(separator)}) END"
        )

    def visits(self, relation: str, keys: list[str], gap_seconds: int) -> str:
        by = ", ".join([*keys, "visitor"])
        window = f"PARTITION BY {by} ORDER BY timestamp"
        starts = (
            f"SELECT {by}, timestamp, type, CASE WHEN lag(timestamp) OVER ({window}) IS NULL "
            f"OR {self.seconds(f'lag(timestamp) OVER ({window})', 'timestamp')} > {gap_seconds} "
            f"THEN 1 ELSE 0 END AS starts FROM {relation}"
        )
        numbered = (
            f"SELECT *, count(CASE WHEN starts = 1 THEN 1 END) OVER ({window} "
            "ROWS UNBOUNDED PRECEDING) AS visit "
            f"FROM ({starts}) AS starts"
        )
        return (
            f"SELECT {by}, count(*) AS events, "
            "count(CASE WHEN type = 'page' THEN 1 END) AS pageviews, "
            f"{self.seconds('min(timestamp)', 'max(timestamp)')} AS seconds "
            f"FROM ({numbered}) AS numbered GROUP BY {by}, visit"
        )
