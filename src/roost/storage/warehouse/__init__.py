"""The Warehouse protocol: where stored events are queried.

It is loaded from the Log by the Loader (one writer thread) and read by everything else:
ingest at start-up (recent messageIds, so deduplication survives a restart; each
workspace's usage this month, so budgets count exactly), the SQL endpoint (a sandboxed query
confined to one project) and profiles (a user's activity over linked ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import pyarrow as pa
from msgspec import Struct

from roost.storage.log import Group
from roost.storage.warehouse.flavor import Flavor


class QueryResult(Struct):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False


class LoadShape(NamedTuple):
    """How the Loader feeds a Warehouse: up to `events` at once, and (unless a reader waits
    or that many are waiting) at most one load every `every` seconds."""

    events: int
    every: float


class Warehouse(Protocol):
    flavor: Flavor  # how reports (query/stats.py) write this backend's SQL
    load_shape: LoadShape  # measured per backend: bench/RESULTS.md

    # Loading, on the Loader's thread only

    def loaded_offset(self) -> int:
        """The highest Log offset loaded; events up to it are queryable."""
        ...

    def load(self, groups: Sequence[Group]) -> None:
        """Insert the events of these groups after `loaded_offset()`, at once."""
        ...

    def take_over(self) -> int:
        """Become the one loader (a worker that got the lease): read where the last loader
        stopped and drop any rows it inserted past that without recording them, so they are
        loaded again exactly once. The loaded offset."""
        ...

    def stored_offset(self) -> int:
        """The loaded offset as stored now (a loader in another process moves it)."""
        ...

    def replace_identities(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Make the identity links (project_id, alias, user_id) the given ones."""
        ...

    def version(self) -> int:
        """A number that changes whenever what a query sees may have changed (a load, new
        identity links, an erasure): answers kept under one version are still right."""
        ...

    def maybe_checkpoint(self) -> None: ...

    def tidy(self) -> None:
        """Upkeep for a moment with nothing to load (a little at a time)."""
        ...

    def close(self) -> None: ...

    # Queries, from any thread

    def recent_message_ids(self, since: datetime) -> Iterable[tuple[int, str, datetime]]:
        """(project_id, message_id, received_at) of events received since `since`."""
        ...

    def count_since(self, project_ids: Sequence[int], since: datetime) -> int:
        """Events of these projects received since `since`."""
        ...

    def activity(
        self, project_id: int, ids: Sequence[str]
    ) -> tuple[int, datetime | None, datetime | None]:
        """(events, first, last) of the events whose user id, or else anonymous id, is in ids."""
        ...

    def project_sql(
        self, project_id: int, sql: str, *, timeout: float, max_rows: int, max_bytes: int
    ) -> QueryResult:
        """Run one read-only query over an `events` view of one project's rows; the answer
        cut (`truncated`) past `max_rows` rows or about `max_bytes` bytes, the time limit
        counting the reading of the rows too."""
        ...

    def erase(
        self,
        project_id: int,
        *,
        ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offsets: Sequence[tuple[int, int]] | None = None,
    ) -> int:
        """Delete the project's events of these user/anonymous ids, with a timestamp in
        [since, until) (naive UTC), or at these Log offsets (first, last); how many."""
        ...

    def scrub(self, erased_at: datetime) -> bool:
        """Make what `erase` deleted (by `erased_at`, naive UTC) unreadable in every file the
        Warehouse keeps (DuckDB rewrites its file; ClickHouse waits for the parts from before
        to be removed). False when it could not finish now: try again later."""
        ...

    def export(
        self,
        project_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_rows: int = 10000,
    ) -> Iterator[pa.RecordBatch]:
        """The project's events (timestamp in [since, until), naive UTC) in Log order, as
        Arrow record batches, streamed."""
        ...

    def report(self, sql: str, *, timeout: float, max_rows: int) -> QueryResult:
        """Run a query Roost wrote through `flavor` (a report), with the same limits."""
        ...
