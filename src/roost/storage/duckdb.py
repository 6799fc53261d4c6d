"""The embedded backend: one DuckDB file is both the Log and the Warehouse.

All writes go through one writer thread fed by a queue (Datasette's `execute_write_fn`).
Requests that arrive while a commit is running wait for the next one, so under load many
requests share one commit (group commit) and at rest a lone request is committed at once.
A request is answered only after the commit that holds its events returns, and since the
Warehouse reads the same tables, an acknowledged event is queryable at once.

Automatic checkpoints are switched off: DuckDB would run them inside whichever commit crossed
the threshold. The writer runs them itself between commits, when the WAL has grown past
`checkpoint_wal_mb`, and times them (`roost_log_checkpoint_seconds`).

External file and network access are switched off for the whole database and the
configuration is locked, so no query — the SQL endpoint's included — can turn them back on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from roost import metrics
from roost.errors import BackendError, BadRequest
from roost.model import Event, LoggedEvent
from roost.query.sql import check_select, plain_value
from roost.storage.schema import ALL_COLUMNS, ARROW_SCHEMA, EVENT_COLUMNS
from roost.storage.warehouse import QueryResult

log = logging.getLogger("roost.storage")

TABLE = "roost.events"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode
_JSON_INDEXES = [i for i, c in enumerate(EVENT_COLUMNS) if c.json]


class _Pending:
    __slots__ = ("events", "future", "loop")

    def __init__(
        self, events: Sequence[Event], future: asyncio.Future[list[int]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.events = events
        self.future = future
        self.loop = loop


def _resolve(future: asyncio.Future[list[int]], result: list[int] | BaseException) -> None:
    if future.done():  # the request went away; its events are stored all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def to_arrow(events: Sequence[Event], first_offset: int) -> pa.Table:
    """Columns from events: one `astuple` per event and one transpose, no loop per field."""
    rows = [msgspec.structs.astuple(e) for e in events]
    columns: list[Any] = list(zip(*rows, strict=True))
    for i in _JSON_INDEXES:
        columns[i] = [_encode(v).decode() for v in columns[i]]
    arrays = [pa.array(range(first_offset, first_offset + len(events)), pa.int64())]
    arrays += [pa.array(columns[i], c.arrow) for i, c in enumerate(EVENT_COLUMNS)]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f'"{c.name}" {c.duckdb}' for c in ALL_COLUMNS)
    con.execute("CREATE SCHEMA IF NOT EXISTS roost")
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})")


class DuckDBStore:
    """Log and Warehouse over one DuckDB file."""

    def __init__(
        self, path: str | Path, *, commit_max_events: int = 20000, checkpoint_wal_mb: int = 64
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(
            str(self.path),
            config={
                "enable_external_access": "false",
                "autoinstall_known_extensions": "false",
                "autoload_known_extensions": "false",
                "allow_community_extensions": "false",
                "python_enable_replacements": "false",
                "checkpoint_threshold": "1TB",
                "lock_configuration": "true",
            },
        )
        create_schema(self._con)
        self._con.execute("CHECKPOINT")
        row = self._con.execute(f"SELECT coalesce(max(log_offset), 0) FROM {TABLE}").fetchone()
        self._last_offset = int(row[0]) if row else 0
        self._commit_max_events = commit_max_events
        self._checkpoint_bytes = checkpoint_wal_mb * 1024 * 1024
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._failed: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="roost-writer", daemon=True)
        self._writer.start()

    # Log

    async def append(self, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        with self._wake:
            if self._stopping:
                raise BackendError("the event store is shutting down")
            self._queue.append(_Pending(events, future, loop))
            self._wake.notify()
        return await future

    def last_offset(self) -> int:
        return self._last_offset

    async def read(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        return await asyncio.to_thread(self.read_sync, after_offset, limit)

    def read_sync(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        cursor = self._con.cursor()
        try:
            rows = cursor.execute(
                f"SELECT * FROM {TABLE} WHERE log_offset > ? ORDER BY log_offset LIMIT ?",
                [after_offset, limit],
            ).fetchall()
        finally:
            cursor.close()
        return [LoggedEvent(row[0], _event_from_row(row[1:])) for row in rows]

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        with self._wake:
            if self._stopping:
                return
            self._stopping = True
            self._wake.notify()
        self._writer.join()
        try:
            self._con.execute("CHECKPOINT")
        finally:
            self._con.close()

    # Warehouse

    def recent_message_ids(self, since: datetime) -> Iterable[tuple[int, str, datetime]]:
        cursor = self._con.cursor()
        try:
            cursor.execute(
                f"SELECT project_id, message_id, received_at FROM {TABLE} WHERE received_at >= ?",
                [since.replace(tzinfo=None)],
            )
            while batch := cursor.fetchmany(100_000):
                yield from batch
        finally:
            cursor.close()

    def count_since(self, project_ids: Sequence[int], since: datetime) -> int:
        if not project_ids:
            return 0
        cursor = self._con.cursor()
        try:
            row = cursor.execute(
                f"SELECT count(*) FROM {TABLE} WHERE received_at >= ? AND list_contains(?, project_id)",
                [since.replace(tzinfo=None), list(project_ids)],
            ).fetchone()
        finally:
            cursor.close()
        return int(row[0]) if row else 0

    def project_sql(
        self, project_id: int, sql: str, *, timeout: float, max_rows: int
    ) -> QueryResult:
        check_select(sql)
        cursor = self._con.cursor()
        timer = threading.Timer(timeout, cursor.interrupt)
        try:
            cursor.execute(
                f"CREATE TEMP VIEW events AS SELECT * FROM {TABLE} WHERE project_id = {int(project_id)}"
            )
            timer.start()
            try:
                cursor.execute(sql)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(max_rows + 1)
            except duckdb.InterruptException:
                raise BadRequest(
                    f"sql: the query ran longer than the {timeout:g} s time limit", field="sql"
                ) from None
            except duckdb.Error as exc:
                raise BadRequest(f"sql: {_first_line(exc)}", field="sql") from None
        finally:
            timer.cancel()
            cursor.close()
        truncated = len(rows) > max_rows
        return QueryResult(
            columns=columns,
            rows=[[plain_value(v) for v in row] for row in rows[:max_rows]],
            truncated=truncated,
        )

    # The writer thread

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if not self._queue and self._stopping:
                    return
                batch = self._take()
            self._commit(batch)
            if not self._queue:
                self._maybe_checkpoint()

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        count = 0
        while self._queue and (not taken or count + len(self._queue[0].events) <= self._commit_max_events):
            pending = self._queue.popleft()
            taken.append(pending)
            count += len(pending.events)
        return taken

    def _commit(self, batch: list[_Pending]) -> None:
        events = [e for p in batch for e in p.events]
        first = self._last_offset + 1
        started = time.perf_counter()
        try:
            table = to_arrow(events, first)
            con = self._con
            con.begin()
            try:
                con.register("roost_batch", table)
                con.execute(f"INSERT INTO {TABLE} SELECT * FROM roost_batch")
                con.unregister("roost_batch")
                con.commit()
            except BaseException:
                con.rollback()
                raise
        except Exception as exc:
            log.exception("commit of %d events failed", len(events))
            error = BackendError(f"the event store could not commit: {_first_line(exc)}")
            for p in batch:
                p.loop.call_soon_threadsafe(_resolve, p.future, error)
            return
        self._last_offset = first + len(events) - 1
        metrics.LOG_COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.LOG_BATCH_EVENTS.observe(len(events))
        offset = first
        for p in batch:
            n = len(p.events)
            p.loop.call_soon_threadsafe(_resolve, p.future, list(range(offset, offset + n)))
            offset += n

    def _maybe_checkpoint(self) -> None:
        wal = self.path.with_name(self.path.name + ".wal")
        try:
            size = wal.stat().st_size
        except FileNotFoundError:
            return
        if size < self._checkpoint_bytes:
            return
        started = time.perf_counter()
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error:
            log.exception("checkpoint failed; it will be tried again after the next commit")
            return
        metrics.LOG_CHECKPOINT_SECONDS.observe(time.perf_counter() - started)


def _event_from_row(row: Sequence[Any]) -> Event:
    values = dict(zip((c.name for c in EVENT_COLUMNS), row, strict=True))
    for c in EVENT_COLUMNS:
        if c.json:
            raw = values[c.name]
            values[c.name] = _decode(raw) if raw else {}
        elif c.duckdb == "TIMESTAMP" and values[c.name] is not None:
            values[c.name] = values[c.name].replace(tzinfo=UTC)
    return Event(**values)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
