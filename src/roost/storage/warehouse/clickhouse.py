"""The cluster Warehouse: ClickHouse, over its HTTP interface (JSONEachRow in, JSONCompact out).

The SQL here is the subset ClickHouse 18.16 (Debian's package) and every later release run: no
DateTime64 (timestamps are whole seconds), no JSON functions (a row keeps its properties' top
level members as two arrays of keys and text values, which `prop` reads), no window functions
(`visits` sorts each visitor's times into an array instead).

Events go into a ReplacingMergeTree keyed by project, day and messageId, so two copies of
one event (sent twice past every dedup window) are merged away. The Loader's position is the
`loads` row it writes after each insert has returned: events are loaded only once ClickHouse
has them all, whatever parts the insert made; a loader killed between the two leaves rows past
its recorded position, which the next one notes and does not insert again (`take_over`), so
each acknowledged event is in the table once. `version()` is the highest counter of that table, so
every API node's result cache sees what any loader or erasure did.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pyarrow as pa

from roost import metrics
from roost.errors import BackendError, BadRequest
from roost.storage.log import Group
from roost.storage.warehouse import LoadShape, QueryResult
from roost.storage.warehouse import clickhouse_hourly as hourly
from roost.storage.warehouse.clickhouse_rows import KEYED, rows
from roost.storage.warehouse.flavor import ClickHouseFlavor, in_ranges
from roost.storage.warehouse.sandbox import check_select, cut, plain_value
from roost.storage.warehouse.schema import EVENT_COLUMNS, Column

if TYPE_CHECKING:
    from roost.config import Settings

_encode = msgspec.json.Encoder().encode
OLD_PARTS_SECONDS = 60  # how long replaced parts stay on disk: an erasure's bound (README)
REMAKE_SECONDS = 10.0  # how often a busy loader looks for hours an erasure marked
REMAKE_HOURS = 500  # hours made again per statement


def clickhouse_type(column: Column) -> str:
    if column.name == "project_id":
        return "UInt32"
    if column.name in ("message_id", "type", "dialect"):
        return "String"  # always set; message_id is in the sorting key
    if column.json:
        return "String"
    return {
        "VARCHAR": "Nullable(String)",
        "TIMESTAMP": "Nullable(DateTime)",
        "DOUBLE": "Nullable(Float64)",
        "BOOLEAN": "Nullable(UInt8)",
    }[column.duckdb]


def _columns_sql() -> str:
    columns = ["log_offset UInt64"]
    for c in EVENT_COLUMNS:
        kind = clickhouse_type(c)
        if c.name == "timestamp":
            kind = "DateTime"  # the sorting and partition key: never NULL
        columns.append(f"{c.name} {kind}")
    for name in KEYED:
        columns += [f"{name}_keys Array(String)", f"{name}_values Array(String)"]
    return ", ".join(columns)


class ClickHouseSettings(msgspec.Struct, frozen=True):
    base: str
    database: str
    user: str | None
    password: str | None


def parse_url(url: str) -> ClickHouseSettings:
    """`clickhouse://[user[:password]@]host:port/database` (the HTTP port, 8123 by default)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise BadRequest("warehouse_url: a clickhouse:// URL needs a host", field="warehouse_url")
    database = parts.path.strip("/") or "roost"
    if not database.replace("_", "").isalnum():
        raise BadRequest("warehouse_url: the database name must be letters, digits and _",
                         field="warehouse_url")  # fmt: skip
    scheme = "https" if parse_qs(parts.query).get("secure") == ["1"] else "http"
    return ClickHouseSettings(
        base=f"{scheme}://{parts.hostname}:{parts.port or 8123}/",
        database=database,
        user=parts.username,
        password=parts.password,
    )


def _value(kind: str, value: Any) -> Any:
    """A JSONCompact value as the Python value DuckDB would have given."""
    if value is None:
        return None
    if kind.startswith("Nullable("):
        kind = kind[9:-1]
    if kind.startswith(("DateTime", "Date")) and value.startswith("0000-00-00"):
        return None  # the zero date: what min()/max() of no rows give
    if kind.startswith("DateTime"):
        return datetime.fromisoformat(value)
    if kind == "Date":
        return date.fromisoformat(value)
    if kind.startswith(("UInt", "Int")) and isinstance(value, str):
        return int(value)
    if kind.startswith("Array(") and isinstance(value, list):
        inner = kind[6:-1]
        return [_value(inner, v) for v in value]
    return value


STREAM_BYTES = 1 << 20  # rows made before they are sent on


def _streamed(groups: Sequence[Group], keep: Callable[[int], bool]) -> Iterator[bytes]:
    """The rows of one insert, sent as they are made (HTTP chunks): ClickHouse parses what
    came while the next rows are made, instead of the two taking turns (bench/RESULTS.md)."""
    made: list[bytes] = []
    size = 0
    for group in groups:
        lines = rows([group], keep)
        if not lines:
            continue
        chunk = b"\n".join(lines) + b"\n"
        made.append(chunk)
        size += len(chunk)
        if size >= STREAM_BYTES:
            yield b"".join(made)
            made, size = [], 0
    if made:
        yield b"".join(made)


class ClickHouseWarehouse:
    # An insert costs ClickHouse ~120 ms of CPU whatever its size (a part of ~45 columns'
    # files; 18.16): 1,000 rows an insert is 120 µs a row, 20,000 is 7.4 (bench/RESULTS.md).
    load_shape = LoadShape(events=50_000, every=1.0)

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        query_memory_mb: int = 2048,
        remake_after: float = 60.0,
    ) -> None:
        # how old an erasure's mark must be for its hours to be made again: older than any
        # report still running may have read it (clickhouse_hourly.py)
        self.remake_after = remake_after
        self.query_memory = query_memory_mb << 20
        self.settings = parse_url(url)
        self.db = self.settings.database
        self.table = f"{self.db}.events"
        auth = None
        if self.settings.user:
            auth = httpx.BasicAuth(self.settings.user, self.settings.password or "")
        self._http = httpx.Client(base_url=self.settings.base, timeout=timeout, auth=auth)
        self._views: set[int] = set()
        self._present: set[int] = set()  # offsets past the loaded one already in the table
        self._lock = threading.Lock()
        self._closed = False
        self._remade = 0.0
        self._unsure = False  # an insert failed: which of its rows went in is not known
        # the hourly rows (clickhouse_hourly.py) made to hold every event: only grows
        self._made: frozenset[str] = frozenset()
        # per project, the hours erasures marked, as they were at the last read of the version
        self._marked: dict[int, list[datetime]] = {}
        identities = f"{self.db}.identities"
        self.flavor = ClickHouseFlavor(
            self.table,
            identities,
            presence=lambda p: (
                None
                if (rows := self._hourly(hourly.PRESENCE, p)) is None
                else hourly.with_people(rows, identities, p)
            ),
            counts=lambda p: self._hourly(hourly.COUNTS, p),
        )
        self._create()
        self._loaded, self._version = self._position()

    # HTTP

    def _post(
        self, sql: str, body: bytes | Iterable[bytes] | None = None, **settings: Any
    ) -> bytes:
        params = {k: str(v) for k, v in settings.items()}
        content: bytes | Iterable[bytes]
        if body is None:
            content = sql.encode()
        else:
            params["query"] = sql
            content = body
        try:
            response = self._http.post("", params=params, content=content)
        except httpx.HTTPError as exc:
            raise BackendError(f"ClickHouse at {self.settings.base}: {exc}") from exc
        if response.status_code != 200:
            raise _Refused(response.text.strip())
        return response.content

    def _command(self, sql: str, body: bytes | Iterable[bytes] | None = None) -> None:
        try:
            self._post(sql, body)
        except _Refused as exc:
            raise BackendError(f"ClickHouse: {exc.first_line}") from None

    def _select(self, sql: str, **settings: Any) -> tuple[list[str], list[list[Any]]]:
        raw = self._post(
            f"{sql} FORMAT JSONCompact",
            join_use_nulls=1,
            join_default_strictness="ALL",  # a plain JOIN, as the reports (and DuckDB) write it
            output_format_json_quote_64bit_integers=0,
            **settings,
        )
        answer = msgspec.json.decode(raw)
        kinds = [m["type"] for m in answer["meta"]]
        rows = [[_value(k, v) for k, v in zip(kinds, row, strict=True)] for row in answer["data"]]
        return [m["name"] for m in answer["meta"]], rows

    def _rows(self, sql: str) -> list[list[Any]]:
        try:
            return self._select(sql)[1]
        except _Refused as exc:
            raise BackendError(f"ClickHouse: {exc.first_line}") from None

    # Schema

    def _create(self) -> None:
        self._command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.table} ({_columns_sql()}) "
            "ENGINE = ReplacingMergeTree(log_offset) PARTITION BY toYYYYMM(timestamp) "
            "ORDER BY (project_id, toDate(timestamp), message_id) "
            # replaced parts (an erasure's mutation, merges) go from disk after this long
            f"SETTINGS old_parts_lifetime = {OLD_PARTS_SECONDS}"
        )
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.db}.identities "
            "(project_id UInt32, alias String, user_id String) "
            "ENGINE = MergeTree ORDER BY (project_id, alias)"
        )
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.db}.loads "
            "(id UInt8, loaded_offset UInt64, version UInt64) "
            "ENGINE = ReplacingMergeTree(version) ORDER BY id"
        )
        self._command(hourly.create_marks(self.db))

    def _position(self) -> tuple[int, int]:
        """The loaded offset and version; and which hourly rows are there to read."""
        markers = ", ".join(f"maxIf(loaded_offset, id = {h.marker})" for h in hourly.HOURLY)
        rows = self._rows(
            f"SELECT maxIf(loaded_offset, id = 0), max(version), {markers} FROM {self.db}.loads"
        )
        loaded, version, *made_at = rows[0]
        made = {h.name for h, marker in zip(hourly.HOURLY, made_at, strict=True) if marker}
        self._readable(made)
        return int(loaded or 0), int(version or 0)

    def _read_marks(self) -> None:
        """Note the hours erasures marked, for the reports' SQL written next (after the
        version: as new as it, or newer)."""
        marked: dict[int, list[datetime]] = {}
        for project_id, hour in self._rows(
            f"SELECT project_id, hour FROM ({hourly.marked(self.db, '< 2')}) ORDER BY hour"
        ):
            marked.setdefault(int(project_id), []).append(hour)
        with self._lock:
            self._marked = marked

    def _readable(self, made: set[str]) -> None:
        """Let reports read these hourly rows: once made they stay made, so a reader's older
        look at `loads` (any thread's) never takes back what the loader has just made."""
        with self._lock:
            self._made |= made

    def _hourly(self, rows: hourly.Hourly, project_id: int) -> str | None:
        """A project's hourly rows of a kind, as its reports read them; None while they are
        not made, or while more hours are marked than a report's SQL may name (an erasure of
        a long range, until those hours are made again)."""
        marked = self._marked.get(int(project_id), [])
        if rows.name not in self._made or len(marked) > hourly.MARKED_IN_SQL:
            return None
        return rows.relation(self.db, project_id, marked)

    def _make_hourly(self) -> None:
        """On the loader, before it inserts: make each kind of hourly rows not made yet and
        fill it with the events already there (an older Roost's data, or a loader killed
        while filling them: made again)."""
        for each in hourly.HOURLY:
            if each.name in self._made:
                continue
            for statement in [*each.drop(self.db), *each.create(self.db, OLD_PARTS_SECONDS)]:
                self._command(statement)
            self._command(f"INSERT INTO {self.db}.{each.name} {each.of_events(self.table)}")
            row = {"id": each.marker, "loaded_offset": 1, "version": self._version}
            self._command(f"INSERT INTO {self.db}.loads FORMAT JSONEachRow", _encode(row))
            self._readable({each.name})

    def _remake(self) -> None:
        """On the loader: make again the hourly rows of the hours erasures marked once they
        are done."""
        self._remade = time.monotonic()
        rows = self._rows(hourly.marked(self.db, f"= {hourly.ERASED}", self.remake_after))
        hours: dict[int, set[datetime]] = {}
        for _, project_id, hour in rows:
            hours.setdefault(int(project_id), set()).add(hour)
        for each in hourly.HOURLY:
            if each.name not in self._made:
                continue  # made from the events, those hours' as they are now, when it is
            for project_id, marked in hours.items():
                ordered = sorted(marked)
                for first in range(0, len(ordered), REMAKE_HOURS):  # statements of bounded size
                    delete, insert = each.remake(
                        self.db, project_id, ordered[first : first + REMAKE_HOURS]
                    )
                    self._command(delete)
                    self._wait_for_mutations(each.name)
                    self._command(insert)
        if rows:
            self._mark([(int(m), int(p), h) for m, p, h in rows], hourly.REMADE)

    def _mark(self, marks: Sequence[tuple[int, int, datetime]], state: int) -> None:
        for first in range(0, len(marks), REMAKE_HOURS):  # statements of bounded size
            self._command(hourly.mark(self.db, marks[first : first + REMAKE_HOURS], state))

    def _advance(self, loaded: int | None) -> None:
        """Record a change of what queries see: a load (row 0, by the one loader) or, from
        any process, new links or an erasure (row 1, which moves only the version)."""
        self._version = max(self._version, self._position()[1]) + 1
        if loaded is None:
            row = {"id": 1, "loaded_offset": 0, "version": self._version}
            self._command(f"INSERT INTO {self.db}.loads FORMAT JSONEachRow", _encode(row))
            return
        now_loaded = max(self._loaded, loaded)
        row = {"id": 0, "loaded_offset": now_loaded, "version": self._version}
        try:
            self._command(f"INSERT INTO {self.db}.loads FORMAT JSONEachRow", _encode(row))
        finally:  # after the row, so a reader that saw the rows also sees their version; on
            self._loaded = now_loaded  # failure too: the rows are in, never to be sent again

    # Loading (the Loader's thread)

    def loaded_offset(self) -> int:
        return self._loaded

    def version(self) -> int:
        """The version, and the marks a report's SQL names read after it (a report reads the
        version before it writes its SQL: web/api/stats.py); the loader's loads and a worker's
        waits for them read the version alone."""
        version = self._position()[1]
        self._read_marks()
        return version

    def take_over(self) -> int:
        """A loader killed between an insert and its `loads` row left rows no one counted:
        note their offsets, so the next loads insert only the events still missing (no
        mutation: a partial insert across months is completed, not deleted and redone)."""
        self._loaded, self._version = self._position()
        self._make_hourly()
        rows = self._rows(f"SELECT log_offset FROM {self.table} WHERE log_offset > {self._loaded}")
        self._present = {int(row[0]) for row in rows}
        return self._loaded

    def stored_offset(self) -> int:
        return self._position()[0]

    def load(self, groups: Sequence[Group]) -> None:
        fresh = [g for g in groups if g[0] + g[1] - 1 > self._loaded]
        if not fresh:
            return
        started = time.perf_counter()
        if self._unsure:  # the last insert failed, perhaps after some of its rows went in
            self.take_over()  # (their hourly rows with them): those are not inserted again
        self._make_hourly()
        if time.monotonic() - self._remade >= REMAKE_SECONDS:
            self._remake()
        loaded, present = self._loaded, self._present

        def keep(offset: int) -> bool:
            return offset > loaded and offset not in present

        if not present or any(keep(o) for g in fresh for o in range(g[0], g[0] + g[1])):
            self._unsure = True
            self._command(f"INSERT INTO {self.table} FORMAT JSONEachRow", _streamed(fresh, keep))
            self._unsure = False
        self._advance(max(g[0] + g[1] - 1 for g in fresh))
        if self._present:
            self._present = {o for o in self._present if o > self._loaded}
        metrics.WAREHOUSE_LOAD_SECONDS.observe(time.perf_counter() - started)

    def replace_identities(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Build the new links beside the old, then swap them in with one RENAME."""
        fresh, old = f"{self.db}.identities_new", f"{self.db}.identities_old"
        self._command(f"DROP TABLE IF EXISTS {fresh}")
        self._command(f"CREATE TABLE {fresh} AS {self.db}.identities")
        body = b"\n".join(_encode({"project_id": p, "alias": a, "user_id": u}) for p, a, u in rows)
        if body:
            self._command(f"INSERT INTO {fresh} FORMAT JSONEachRow", body)
        self._command(f"DROP TABLE IF EXISTS {old}")
        self._command(
            f"RENAME TABLE {self.db}.identities TO {old}, {fresh} TO {self.db}.identities"
        )
        self._command(f"DROP TABLE IF EXISTS {old}")
        self._advance(self._loaded)

    def maybe_checkpoint(self) -> None:
        """Nothing to do: ClickHouse merges its parts on its own."""

    def tidy(self) -> None:
        """Make again the hourly rows of the hours erasures marked (ClickHouse merges the
        rest on its own)."""
        self._make_hourly()
        self._remake()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._http.close()

    # Queries

    def recent_message_ids(self, since: datetime) -> Iterable[tuple[int, str, datetime]]:
        """Paged by offset: a week of ids is millions of rows, never one answer in memory."""
        stamp = self.flavor.timestamp(since.astimezone(UTC).replace(tzinfo=None))
        after = 0
        while rows := self._rows(
            f"SELECT log_offset, project_id, message_id, received_at FROM {self.table} "
            f"WHERE received_at >= {stamp} AND log_offset > {after} ORDER BY log_offset "
            "LIMIT 100000"
        ):
            yield from ((int(p), str(m), r) for _, p, m, r in rows)
            after = int(rows[-1][0])

    def count_since(self, project_ids: Sequence[int], since: datetime) -> int:
        if not project_ids:
            return 0
        stamp = self.flavor.timestamp(since.astimezone(UTC).replace(tzinfo=None))
        listed = ", ".join(str(int(p)) for p in project_ids)
        rows = self._rows(
            f"SELECT count() FROM {self.table} WHERE received_at >= {stamp} "
            f"AND project_id IN ({listed})"
        )
        return int(rows[0][0])

    def activity(
        self, project_id: int, ids: Sequence[str]
    ) -> tuple[int, datetime | None, datetime | None]:
        listed = ", ".join(self.flavor.string(i) for i in ids) or "''"
        rows = self._rows(
            "SELECT count(), min(timestamp), max(timestamp) FROM ("
            f"SELECT timestamp FROM {self.table} WHERE project_id = {int(project_id)} "
            f"AND ifNull(user_id, anonymous_id) IN ({listed}))"
        )
        count, first, last = rows[0]
        return (int(count), first, last) if count else (0, None, None)

    def _project_view(self, project_id: int) -> str:
        """The database whose `events` view shows one project's rows (made on first use)."""
        pid = int(project_id)
        database = f"{self.db}_p{pid}"
        if pid not in self._views:
            self._command(f"CREATE DATABASE IF NOT EXISTS {database}")
            self._command(
                f"CREATE VIEW IF NOT EXISTS {database}.events AS SELECT *, "
                "person AS resolved_user_id "
                f"FROM {self.flavor.events(pid)}"
            )
            with self._lock:
                self._views.add(pid)
        return database

    def project_sql(
        self, project_id: int, sql: str, *, timeout: float, max_rows: int, max_bytes: int
    ) -> QueryResult:
        check_select(sql)  # one SELECT naming no table but `events`: the view below
        database = self._project_view(project_id)
        result = self._limited(
            sql, timeout, max_rows, "sql", database=database,
            max_result_bytes=max_bytes, max_block_size=1024,  # a block past it is the overshoot
        )  # fmt: skip
        return cut(result, max_bytes)

    def report(self, sql: str, *, timeout: float, max_rows: int) -> QueryResult:
        return self._limited(sql, timeout, max_rows, "query")

    def _limited(
        self, sql: str, timeout: float, max_rows: int, field: str, **settings: Any
    ) -> QueryResult:
        try:
            columns, rows = self._select(
                sql,
                readonly=2,
                max_execution_time=max(1, round(timeout)),
                max_result_rows=max_rows + 1,
                result_overflow_mode="break",
                max_memory_usage=self.query_memory,
                **settings,
            )
        except _Refused as exc:
            if "TIMEOUT_EXCEEDED" in exc.text or "Timeout exceeded" in exc.text:
                raise BadRequest(
                    f"{field}: the query ran longer than the {timeout:g} s time limit",
                    field=field,
                ) from None
            raise BadRequest(f"{field}: {exc.first_line}", field=field) from None
        return QueryResult(
            columns=columns,
            rows=[[plain_value(v) for v in row] for row in rows[:max_rows]],
            truncated=len(rows) > max_rows,
        )

    def erase(
        self,
        project_id: int,
        *,
        ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offsets: Sequence[tuple[int, int]] | None = None,
    ) -> int:
        """Delete with a mutation, and wait for it to be done (ClickHouse runs them in the
        background)."""
        where = self._scope(project_id, since, until)
        if ids is not None:
            listed = ", ".join(self.flavor.string(i) for i in ids) or "''"
            where.append(
                f"(user_id IN ({listed}) OR anonymous_id IN ({listed}) "
                f"OR previous_id IN ({listed}))"
            )
        if offsets is not None:
            where.append(in_ranges("log_offset", offsets))
        condition = " AND ".join(where)
        count = int(self._rows(f"SELECT count() FROM {self.table} WHERE {condition}")[0][0])
        if count:
            # the hours read from the events from now on, until the loader makes them again
            hours = self._rows(
                f"SELECT DISTINCT toStartOfHour(timestamp) FROM {self.table} WHERE {condition}"
            )
            mark = uuid.uuid4().int >> 64
            marks = [(mark, int(project_id), row[0]) for row in hours]
            self._mark(marks, hourly.ERASING)
            self._command(f"ALTER TABLE {self.table} DELETE WHERE {condition}")
            self._wait_for_mutations()
            self._mark(marks, hourly.ERASED)
        self._advance(None)
        return count

    def scrub(self, erased_at: datetime) -> bool:
        """Whether every part of the events table made by the time of the erasure and replaced
        since (by its mutation, or a merge) is gone from disk: ClickHouse drops replaced parts
        after `old_parts_lifetime`, which the table sets to OLD_PARTS_SECONDS."""
        self._wait_for_mutations()
        if self._rows(hourly.marked(self.db, f"= {hourly.ERASED}")):
            return False  # the hourly rows still hold erased events' ids, pages and names
        made_by = self.flavor.timestamp(erased_at + timedelta(seconds=1))
        left = self._rows(
            f"SELECT count() FROM system.parts WHERE database = '{self.db}' "
            f"AND table IN ('events', {', '.join(repr(h.name) for h in hourly.HOURLY)}) "
            "AND NOT active "
            f"AND modification_time <= {made_by}"
        )
        return not int(left[0][0])

    def _wait_for_mutations(self, table: str = "events", timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = self._rows(
                f"SELECT count() FROM system.mutations WHERE database = '{self.db}' "
                f"AND table = '{table}' AND is_done = 0"
            )
            if not int(left[0][0]):
                return
            if time.monotonic() > deadline:
                raise BackendError("ClickHouse: an erasure is still running; it will finish")
            time.sleep(0.05)

    def _scope(self, project_id: int, since: datetime | None, until: datetime | None) -> list[str]:
        where = [f"project_id = {int(project_id)}"]
        if since is not None:
            where.append(f"timestamp >= {self.flavor.timestamp(since)}")
        if until is not None:
            where.append(f"timestamp < {self.flavor.timestamp(until)}")
        return where

    def export(
        self,
        project_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_rows: int = 10000,
    ) -> Iterator[pa.RecordBatch]:
        """The project's events in Log order, read a page of `batch_rows` at a time."""
        names = [c.name for c in EVENT_COLUMNS if c.name != "project_id"]
        schema = pa.schema([(c.name, _arrow_type(c)) for c in EVENT_COLUMNS if c.name in names])
        condition = " AND ".join(self._scope(project_id, since, until))
        after = 0
        while True:
            rows = self._rows(
                f"SELECT log_offset, {', '.join(names)} FROM {self.table} "
                f"WHERE {condition} AND log_offset > {after} ORDER BY log_offset "
                f"LIMIT {int(batch_rows)}"
            )
            if not rows:
                return
            after = int(rows[-1][0])
            columns = list(zip(*(r[1:] for r in rows), strict=True))
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(
                        [_exported(field.type, v) for v in column],
                        field.type,
                    )
                    for field, column in zip(schema, columns, strict=True)
                ],
                schema=schema,
            )


def _arrow_type(column: Column) -> pa.DataType:
    return {
        "TIMESTAMP": pa.timestamp("us"),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "INTEGER": pa.int64(),
    }.get(column.duckdb, pa.string())


def _exported(kind: pa.DataType, value: Any) -> Any:
    if kind == pa.bool_() and value is not None:
        return bool(value)
    return value


class _Refused(Exception):
    """ClickHouse answered with an error (the statement, not the connection, failed)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        self.first_line = text.splitlines()[0] if text else "error"


def open_warehouse(url: str, settings: Settings) -> ClickHouseWarehouse:
    # a report reads the marks, then may wait its turn (3 × the time limit) and run (1 ×)
    return ClickHouseWarehouse(
        url,
        query_memory_mb=settings.query_memory_mb,
        remake_after=5 * settings.sql_timeout_seconds,
    )
