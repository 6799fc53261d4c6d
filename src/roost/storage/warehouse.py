"""The Warehouse protocol: where stored events are queried.

Ingest needs two things from it at start-up — the recent messageIds (so deduplication
survives a restart) and each workspace's usage this month (so budgets count exactly) — and
the SQL endpoint needs a sandboxed query confined to one project.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from msgspec import Struct


class QueryResult(Struct):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False


class Warehouse(Protocol):
    def recent_message_ids(self, since: datetime) -> Iterable[tuple[int, str, datetime]]:
        """(project_id, message_id, received_at) of events received since `since`."""
        ...

    def count_since(self, project_ids: Sequence[int], since: datetime) -> int:
        """Events of these projects received since `since`."""
        ...

    def project_sql(
        self, project_id: int, sql: str, *, timeout: float, max_rows: int
    ) -> QueryResult:
        """Run one read-only query over an `events` view of one project's rows."""
        ...
