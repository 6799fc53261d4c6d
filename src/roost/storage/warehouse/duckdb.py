"""The embedded Warehouse: DuckDB, loaded from the Log in large batches of JSON.

Only the Loader writes here (one thread). Automatic checkpoints are off: once the WAL has
grown past `checkpoint_wal_mb`, a checkpointer thread of the Warehouse runs one on a cursor of
its own while the Loader goes on loading (DuckDB lets appends go on during a checkpoint), so a
checkpoint delays neither an acknowledgement nor the freshness of queries. A checkpoint has a
large fixed cost, so fewer, larger ones cost far less per event (bench/RESULTS.md).

External file and network access are switched off for the whole database and the
configuration is locked, so no query — the SQL endpoint's included — can turn them back on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from roost import metrics
from roost.errors import BadRequest
from roost.niceness import lower_priority
from roost.storage.disk import Room, file_path
from roost.storage.log import Group
from roost.storage.warehouse import (
    LoadShape,
    QueryResult,
    duckdb_counts,
    duckdb_errors,
    duckdb_links,
    duckdb_seen,
    duckdb_sessions,
)
from roost.storage.warehouse import duckdb_rollups as rollups
from roost.storage.warehouse.flavor import DuckDBFlavor, Flavor, in_ranges
from roost.storage.warehouse.sandbox import check_select, plain_value
from roost.storage.warehouse.schema import ALL_COLUMNS, EVENT_COLUMNS

if TYPE_CHECKING:
    from roost.config import Settings

log = logging.getLogger("roost.storage")

TABLE = rollups.EVENTS
IDENTITIES = rollups.IDENTITIES  # a copy of the profiles' links, for attribution in queries


# The Log hands over events as JSON arrays (one per group commit); DuckDB parses them itself,
# into the columns of storage/warehouse/schema.py, so loading costs no Python work per event.
_STRUCTURE = json.dumps([{c.name: "JSON" if c.json else c.duckdb for c in EVENT_COLUMNS}])
_FIELDS = ", ".join(  # the Log leaves out what is at its default (model.Event)
    f"coalesce(e.\"{c.name}\", '{{}}')" if c.json
    else "coalesce(e.bot, false)" if c.name == "bot"
    else f'e."{c.name}"'
    for c in EVENT_COLUMNS
)  # fmt: skip
_INSERT = (
    f"INSERT INTO {TABLE} SELECT first_offset + i AS log_offset, {_FIELDS} FROM ("
    "SELECT first_offset, unnest(generate_series(0, len(l) - 1)) AS i, unnest(l) AS e "
    f"FROM (SELECT first_offset, from_json(events, '{_STRUCTURE}') AS l FROM roost_groups)"
    ") WHERE first_offset + i > ? AND e.project_id <> 0"  # project 0: an erased event's tombstone
)
# The Log offset loaded up to, kept by erasures: the events at the Log's end erased, the
# greatest offset left in the table is behind it, and the Loader would load their tombstones
LOADED = "roost.loaded"


# Events loaded past the rollups that have them rolled in (or when idle, or a report asks): a
# roll's cost grows with the visitors it touches more than with its events, so under a load
# that never lets the Loader idle, rolls of 200,000 events cost it ~0.4 s per 500,000 against
# ~0.7 s in rolls of 50,000 — but a report asked meanwhile rolls what is left first (~0.2 s
# for 200,000 events, with the last-seen rows' merge up to ~0.5 s): 100,000 between the two
ROLL_EVENTS = 100_000
MERGE_MIN_ROWS = 20_000  # an hour's rows are merged once twice as many came since its last merge
HOURS_TRACKED = 20_000  # past this many hours counted, those merged are forgotten
TIDY_ROWS = 200_000  # rows merged at a time while nothing waits to be loaded (~0.1–0.5 s)


def create_schema(con: duckdb.DuckDBPyConnection, with_rollups: bool = True) -> list[str]:
    """Create what is missing; which rollup tables were just made (to be filled from the
    events: duckdb_rollups.create). Without rollups, drop theirs: kept again later, they are
    made again."""
    columns = ", ".join(f'"{c.name}" {c.duckdb}' for c in ALL_COLUMNS)
    con.execute("CREATE SCHEMA IF NOT EXISTS roost")
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {IDENTITIES} "
        "(project_id INTEGER, alias VARCHAR, user_id VARCHAR, PRIMARY KEY (project_id, alias))"
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {LOADED} (loaded BIGINT)")
    if not with_rollups:
        rollups.drop(con)
        return []
    return rollups.create(con)


SCRUB_WAIT_SECONDS = 30.0
SCRUB_COPY_MB = 256  # the file a scrub writes only streams rows in: spills past this


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


# DuckDB's worker threads: the lowest priority, so a query spreads over the cores nothing else
# wants. At the query threads' niceness (10) each worker took its own share of a busy core:
# ingest kept ~57% of its requests/s while reports ran instead of ~64% (bench/contention.py).
WORKERS_NICE = 19


def _connect(
    path: Path, memory_mb: int = 2048, threads: int = 0, nice: int = 0
) -> duckdb.DuckDBPyConnection:
    """Open the file with `threads` for a query (0: every core), from a thread niced by
    `nice`: DuckDB starts its worker threads when it opens the file, and a thread inherits its
    creator's niceness (Linux)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "enable_external_access": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "python_enable_replacements": "false",
        "checkpoint_threshold": "1TB",
        "memory_limit": f"{memory_mb}MB",
        "threads": threads if threads > 0 else os.cpu_count() or 1,
        # DuckDB 2.0.1 drops a LIMIT above a LEFT JOIN whose right side statistics prove
        # empty (the events view joins the identity links, empty until the first alias):
        # an answer must mean what its statement says, so that pass is off
        # (tests/query/test_sql_meaning.py; no measurable cost at 1M events:
        # bench/RESULTS.md).
        "disabled_optimizers": "statistics_propagation",
        "lock_configuration": "true",
    }
    opened: list[duckdb.DuckDBPyConnection] = []
    failed: list[BaseException] = []

    def open_niced() -> None:
        lower_priority(nice)
        try:
            opened.append(duckdb.connect(str(path), config=config))
        except BaseException as exc:  # raised again in the caller's thread
            failed.append(exc)

    opener = threading.Thread(target=open_niced, name="roost-duckdb-open")
    opener.start()
    opener.join()
    if failed:
        raise failed[0]
    return opened[0]


class Gate:
    """Shared use by queries and loads, or exclusive use by a rewrite of the file; a rewrite
    waiting holds new users back, and gives up after `timeout` rather than wait on a slow
    export for ever."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._closed = False  # an exclusive holder or one waiting for the users to leave

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """Yields whether it got the gate (False: users stayed past the timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._closed = True
            got = self._cond.wait_for(lambda: self._users == 0, timeout)
        try:
            yield got
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class DuckDBWarehouse:
    # Loads of at most 5,000 events, with no pause between them (bench/RESULTS.md, 2026-11-29):
    # against 10,000, batches lose ~7% of their events/s, but an acknowledged event is
    # queryable within ~30 ms at the median instead of ~195 (a reader waits for the load under
    # way, then its own) and the process holds ~60 MB less. 7,500 was no middle: ~160 ms.
    load_shape = LoadShape(events=5_000, every=0.0)

    def __init__(
        self,
        path: str | Path,
        *,
        checkpoint_wal_mb: int = 64,
        memory_mb: int = 2048,
        threads: int = 0,
        nice: int = 0,
        reserve_bytes: int = 0,
        with_rollups: bool = True,
    ) -> None:
        self.path = Path(path)
        self.threads, self.nice = threads, nice
        self.with_rollups = with_rollups  # off only to measure what they cost (bench/loads.py)
        self.memory_mb = memory_mb
        self.room = Room(self.path.parent, reserve_bytes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gate = Gate()
        self._open()
        setup = self._con.cursor()
        row = setup.execute(
            f"SELECT greatest(coalesce(max(log_offset), 0), "
            f"coalesce((SELECT max(loaded) FROM {LOADED}), 0)) FROM {TABLE}"
        ).fetchone()
        setup.close()
        self._loaded = int(row[0]) if row else 0
        self._drop_tombstones()
        self._version = 0  # bumped by every change of what queries see
        self._checkpoint_bytes = checkpoint_wal_mb * 1024 * 1024
        self._checkpointer: threading.Thread | None = None  # started at the first checkpoint
        self._checkpoint_wanted = threading.Event()
        self._closed = False
        self.flavor: Flavor = (
            DuckDBFlavor(
                TABLE,
                IDENTITIES,
                rollups.presence,
                rollups.visits,
                rollups.ROLLED_UP,
                seen=duckdb_seen.seen,
                sessions=duckdb_sessions.session_hours,
                session_rows=duckdb_sessions.session_rows,
                counts=duckdb_counts.counts,
                errors=duckdb_errors.error_hours,
            )
            if with_rollups
            else DuckDBFlavor(TABLE, IDENTITIES)
        )

    def _drop_tombstones(self) -> None:
        """Delete what a Roost before this one loaded of erased events (their tombstones,
        project 0, which no query reads), keeping the offset they were loaded up to."""
        with self._cursor() as cursor:
            if not cursor.execute(f"SELECT 1 FROM {TABLE} WHERE project_id = 0 LIMIT 1").fetchall():
                return
            cursor.begin()
            try:
                tables = [TABLE, *(rollups.PROJECT_TABLES if self.with_rollups else ())]
                for table in tables:
                    cursor.execute(f"DELETE FROM {table} WHERE project_id = 0")
                cursor.execute(f"DELETE FROM {LOADED}")
                cursor.execute(f"INSERT INTO {LOADED} VALUES (?)", [self._loaded])
                cursor.commit()
            except BaseException:
                cursor.rollback()
                raise

    def _open(self) -> None:
        self._con = _connect(self.path, self.memory_mb, self.threads, self.nice)
        # Presence rows of each hour since its last merge: [rows after it, rows added since]
        self._hours: dict[datetime, list[int]] = {}
        self._unmerged: set[datetime] = set()  # the hours with rows added since
        # Held by whatever deletes presence rows (merges, identity changes, erasures): DuckDB
        # fails the second of two transactions deleting one row
        self._rollups_lock = threading.Lock()
        setup = self._con.cursor()
        made = create_schema(setup, self.with_rollups)
        if made:
            started = time.perf_counter()
            rollups.fill(setup, made)
            log.info(
                "warehouse rollups made from the events",
                extra={"seconds": round(time.perf_counter() - started, 3)},
            )
        self._rolled = rollups.rolled(setup) if self.with_rollups else 0
        self._held = duckdb_seen.held(setup) if self.with_rollups else 0
        try:
            setup.execute("CHECKPOINT")
        except duckdb.Error as exc:  # a full disk: queries still answer, loads wait for room
            log.warning("warehouse checkpoint at start failed: %s", _first_line(exc))
        setup.close()
        self._load_con = self._con.cursor()
        # The identity links as IDENTITIES holds them: each load looks up its own ids here
        self._links: dict[tuple[int, str], str] = {
            (p, alias): user
            for p, alias, user in self._load_con.execute(
                f"SELECT project_id, alias, user_id FROM {IDENTITIES}"
            ).fetchall()
        }

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one query, which a rewrite of the file waits for."""
        with self._gate.shared():
            cursor = self._con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    # Loading (one thread only: the Loader's)

    def loaded_offset(self) -> int:
        """The highest Log offset loaded; events up to it are queryable."""
        return self._loaded

    def version(self) -> int:
        return self._version

    def take_over(self) -> int:
        return self.loaded_offset()  # the offset commits with the rows: nothing to drop

    def stored_offset(self) -> int:
        return self.loaded_offset()  # one process opens the file: the loader is this one

    def load(self, groups: Sequence[Group]) -> None:
        """Insert the events after `loaded_offset()`, in one statement (one transaction)."""
        fresh = [g for g in groups if g[0] + g[1] - 1 > self._loaded]
        if not fresh:
            return
        self.room.check(share=0.25)  # catching up may use the reserve, but not its last part
        started = time.perf_counter()
        table = pa.table(
            {
                "first_offset": pa.array([g[0] for g in fresh], pa.int64()),
                "events": pa.array([g[2] for g in fresh], pa.binary()).cast(pa.string()),
            }
        )
        with self._gate.shared():
            con = self._load_con
            con.register("roost_groups", table)
            try:
                con.execute(_INSERT, [self._loaded])
            finally:
                con.unregister("roost_groups")
        self._loaded = max(g[0] + g[1] - 1 for g in fresh)
        self._version += 1
        metrics.WAREHOUSE_LOAD_SECONDS.observe(time.perf_counter() - started)
        if self._loaded - self._rolled >= ROLL_EVENTS:
            self._roll()

    def _roll(self, seen: bool = False) -> None:
        """Roll the events loaded since the last roll into the rollups, then merge the hours
        that have grown enough (the Loader's thread); the last-seen rows too if `seen`, else
        once duckdb_seen.MERGE_EVENTS are due."""
        self._merge(self._roll_up(self._load_con, seen))

    def _roll_up(
        self, con: duckdb.DuckDBPyConnection | None = None, seen: bool = True
    ) -> list[datetime]:
        """Roll the events loaded since the last roll into the rollups, with `con` (else a
        cursor of its own), the last-seen rows too unless `seen` is False and fewer than
        duckdb_seen.MERGE_EVENTS are due; the hours due a merge."""
        # under the erasures' lock: an erasure makes the rows of its hours from the events
        # rolled up when it runs, so no roll may take in the events it is erasing meanwhile
        with self._rollups_lock:
            return self._rolled_up(con, seen)

    def _rolled_up(self, con: duckdb.DuckDBPyConnection | None, seen: bool) -> list[datetime]:
        """`_roll_up`, with the rollups' lock held."""
        upto = self._loaded
        if not self.with_rollups:
            return []
        behind = self._rolled < upto
        due = upto - self._held >= duckdb_seen.MERGE_EVENTS
        merging = self._held < upto and (seen or due)  # the last-seen rows too
        if not behind and not merging:
            return []
        with self._gate.shared():
            cursor = con or self._con.cursor()
            cursor.begin()
            try:
                added = rollups.roll(cursor, upto, self._links) if behind else []
                if merging:
                    duckdb_seen.roll(cursor, upto, self._links)
                cursor.commit()
            except BaseException:
                cursor.rollback()
                raise
            finally:
                if con is None:
                    cursor.close()
        self._rolled = upto
        if merging:
            self._held = upto
        hours = []
        for hour, rows in added:
            counts = self._hours.setdefault(hour, [0, 0])
            counts[1] += rows
            self._unmerged.add(hour)
            if counts[1] >= max(2 * counts[0], MERGE_MIN_ROWS):  # each row merged ~1.5 times
                hours.append(hour)
        if len(self._hours) > HOURS_TRACKED:  # bounded: a forgotten hour is merged sooner
            self._hours = {hour: counts for hour, counts in self._hours.items() if counts[1]}
        return hours

    def tidy(self) -> None:
        """Roll what was loaded since the last roll, merge the rollup rows of a few hours
        that have some to merge, and put the last-seen rows in order when many are not (the
        Loader calls this when it has nothing to load)."""
        self._roll(seen=True)
        hours: list[datetime] = []
        rows = 0
        with self._rollups_lock:  # a report's roll adds hours meanwhile
            for hour in self._unmerged:  # at least one, then as many as TIDY_ROWS holds
                rows += sum(self._hours.get(hour, (0, 0)))
                if hours and rows > TIDY_ROWS:
                    break
                hours.append(hour)
        self._merge(hours)
        if self.with_rollups:
            self._sort_seen()

    def _sort_seen(self) -> None:
        with self._rollups_lock, self._gate.shared():
            con = self._load_con
            if not duckdb_seen.unsorted(con):
                return
            started = time.perf_counter()
            con.begin()
            try:
                duckdb_seen.sort(con)
                con.commit()
            except BaseException:
                con.rollback()
                raise
            log.info(
                "warehouse last-seen rows put in order",
                extra={"seconds": round(time.perf_counter() - started, 3)},
            )

    def _merge(self, hours: list[datetime]) -> None:
        """Make each group's rollup rows of these hours one (an hour's rows come from each
        load that had its events: merged, the reports read a few times fewer). The answers
        stay the same, so queries may read before or after."""
        if not hours:
            return
        with self._rollups_lock, self._gate.shared():
            con = self._load_con
            con.begin()
            try:
                merged = rollups.merge(con, hours)
                con.commit()
            except BaseException:
                con.rollback()
                raise
            for hour in hours:
                self._hours.pop(hour, None)
                self._unmerged.discard(hour)
            for hour, rows in merged:
                self._hours[hour] = [rows, 0]

    def replace_identities(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Make the identity links the given ones (project_id, alias, user_id), at once."""
        table = duckdb_links.links_table(rows)
        with self._rollups_lock, self._gate.shared():
            con = self._load_con
            con.register("roost_identities", table)
            con.begin()
            try:
                rollups.relink(con, "roost_identities", self.with_rollups)
                con.commit()
            except BaseException:
                con.rollback()
                raise
            finally:
                con.unregister("roost_identities")
        self._links = {(p, alias): user for p, alias, user in rows}
        self._version += 1

    def maybe_checkpoint(self) -> None:
        """Have the checkpointer run one if the WAL is past the threshold (at once; the
        Loader goes on)."""
        try:
            size = _wal(self.path).stat().st_size
        except FileNotFoundError:
            return
        if size < self._checkpoint_bytes or self._closed:
            return
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="roost-checkpointer", daemon=True
            )
            self._checkpointer.start()
        self._checkpoint_wanted.set()

    def _checkpoints(self) -> None:
        cursor = self._con.cursor()
        try:
            while True:
                self._checkpoint_wanted.wait()
                self._checkpoint_wanted.clear()
                if self._closed:
                    return
                started = time.perf_counter()
                try:
                    with self._gate.shared():
                        cursor.execute("CHECKPOINT")
                except duckdb.Error:
                    log.exception("checkpoint failed; it will be tried again after the next load")
                    continue
                metrics.WAREHOUSE_CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
        finally:
            cursor.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            self._checkpoint_wanted.set()
            self._checkpointer.join()
        with self._gate.exclusive(timeout=SCRUB_WAIT_SECONDS):
            try:
                self._load_con.execute("CHECKPOINT")
            except duckdb.Error as exc:  # a full disk: the WAL replays at the next start
                log.warning("warehouse checkpoint at close failed: %s", _first_line(exc))
            finally:
                self._load_con.close()
                self._con.close()

    def scrub(self, erased_at: datetime) -> bool:
        """Rewrite the file with only the rows it holds now, so what was deleted is gone
        from disk (DuckDB leaves deleted rows in place and freed blocks as they were). Queries
        and loads wait meanwhile; False when they did not leave within SCRUB_WAIT_SECONDS (an
        export streaming to a slow client): try again later."""
        fresh = self.path.with_name(self.path.name + ".scrub")
        with self._gate.exclusive(timeout=SCRUB_WAIT_SECONDS) as got:
            if not got or self._closed:
                return False
            started = time.perf_counter()
            self._load_con.execute("CHECKPOINT")
            for stale in (fresh, _wal(fresh)):
                stale.unlink(missing_ok=True)
            copy = _connect(fresh, SCRUB_COPY_MB, 1, self.nice)
            try:
                create_schema(copy, self.with_rollups)
                tables = self._load_con.execute(
                    "SELECT schema_name, table_name FROM duckdb_tables() "
                    "WHERE database_name = current_database() AND NOT temporary"
                ).fetchall()
                for schema, name in tables:
                    table = f'"{schema}"."{name}"'
                    reader = self._load_con.sql(f"SELECT * FROM {table}").to_arrow_reader(100_000)
                    for batch in reader:
                        copy.register("roost_rows", batch)
                        copy.execute(f"INSERT INTO {table} SELECT * FROM roost_rows")
                        copy.unregister("roost_rows")
                copy.execute("CHECKPOINT")
            finally:
                copy.close()
            self._load_con.close()
            self._con.close()
            os.replace(fresh, self.path)
            _wal(self.path).unlink(missing_ok=True)  # empty after the checkpoint; never replay it
            self._open()
            self._version += 1
            log.info("warehouse rewritten", extra={"seconds": time.perf_counter() - started})
        return True

    # Queries (any thread: each uses its own cursor)

    def recent_message_ids(self, since: datetime) -> Iterable[tuple[int, str, datetime]]:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT project_id, message_id, received_at FROM {TABLE} WHERE received_at >= ?",
                [since.replace(tzinfo=None)],
            )
            while batch := cursor.fetchmany(100_000):
                yield from batch

    def count_since(self, project_ids: Sequence[int], since: datetime) -> int:
        if not project_ids:
            return 0
        with self._cursor() as cursor:
            row = cursor.execute(
                f"SELECT count(*) FROM {TABLE} WHERE received_at >= ? AND list_contains(?, project_id)",
                [since.replace(tzinfo=None), list(project_ids)],
            ).fetchone()
        return int(row[0]) if row else 0

    def activity(
        self, project_id: int, ids: Sequence[str]
    ) -> tuple[int, datetime | None, datetime | None]:
        """(events, first, last) of the events whose user id, or else anonymous id, is in `ids`."""
        with self._cursor() as cursor:
            row = cursor.execute(
                f"SELECT count(*), min(timestamp), max(timestamp) FROM {TABLE} "
                "WHERE project_id = ? AND list_contains(?, coalesce(user_id, anonymous_id))",
                [project_id, list(ids)],
            ).fetchone()
        assert row is not None
        return int(row[0]), row[1], row[2]

    def project_sql(
        self, project_id: int, sql: str, *, timeout: float, max_rows: int, max_bytes: int
    ) -> QueryResult:
        check_select(sql)
        with self._cursor() as cursor:
            cursor.execute(
                "CREATE TEMP VIEW events AS SELECT e.*, "
                "coalesce(i.user_id, e.user_id, e.anonymous_id) AS resolved_user_id "
                f"FROM {TABLE} e LEFT JOIN {IDENTITIES} i ON i.project_id = e.project_id "
                "AND i.alias = coalesce(e.user_id, e.anonymous_id) "
                f"WHERE e.project_id = {int(project_id)}"
            )
            with self._cursor() as back:
                return _streamed(cursor, back, sql, timeout, max_rows, max_bytes)

    def erase(
        self,
        project_id: int,
        *,
        ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offsets: Sequence[tuple[int, int]] | None = None,
    ) -> int:
        """Delete the project's events of these user, anonymous or previous ids, with a
        timestamp in [since, until), or at these Log offsets (first, last); how many."""
        where, params = _scope(project_id, since, until)
        if ids is not None:
            where.append(
                "(list_contains(?, user_id) OR list_contains(?, anonymous_id) "
                "OR list_contains(?, previous_id))"
            )
            params += [list(ids)] * 3
        if offsets is not None:
            where.append(in_ranges("log_offset", offsets))
        condition = " AND ".join(where)
        with self._rollups_lock, self._cursor() as cursor:
            cursor.begin()
            try:
                # the hours of what goes: their rollups are made again from what stays
                if self.with_rollups:
                    rollups.erased_hours(cursor, condition, params)
                row = cursor.execute(f"DELETE FROM {TABLE} WHERE {condition}", params).fetchone()
                cursor.execute(f"DELETE FROM {LOADED}")
                cursor.execute(f"INSERT INTO {LOADED} VALUES (?)", [self._loaded])
                if self.with_rollups:
                    rollups.remake(cursor, project_id)
                cursor.commit()
            except BaseException:
                cursor.rollback()
                raise
            self._version += 1
        return int(row[0]) if row else 0

    def export(
        self,
        project_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_rows: int = 10000,
    ) -> Iterator[pa.RecordBatch]:
        """The project's events in Log order, a record batch at a time (never all in memory)."""
        where, params = _scope(project_id, since, until)
        columns = ", ".join(c.name for c in EVENT_COLUMNS if c.name != "project_id")
        with self._cursor() as cursor:
            relation = cursor.sql(
                f"SELECT {columns} FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY log_offset",
                params=params,
            )
            reader: pa.RecordBatchReader = relation.to_arrow_reader(batch_rows)
            yield from reader

    def report(self, sql: str, *, timeout: float, max_rows: int) -> QueryResult:
        """Run a query Roost wrote (query/stats.py, through `flavor`), with every event
        loaded rolled up first: it reads the rollups, and the events only up to them."""
        with ExitStack() as stack:
            # Its snapshot taken before any other roll (the Loader's may leave the last-seen
            # rows behind the others): the rollups all hold the events up to one offset
            with self._rollups_lock:
                # a few events' worth, mostly; the last-seen rows' if it reads them
                self._rolled_up(None, seen=duckdb_seen.read_by(sql))
                cursor = stack.enter_context(self._cursor())
                upto = None
                if self.with_rollups and _parameters(cursor, sql):
                    cursor.begin()  # one snapshot: the rollups, and the events up to them
                    stack.callback(cursor.rollback)  # it wrote nothing
                    upto = {rollups.ROLLED_PARAMETER: rollups.rolled(cursor)}
            return _limited(cursor, sql, timeout, max_rows, "query", upto)


def _scope(
    project_id: int, since: datetime | None, until: datetime | None
) -> tuple[list[str], list[Any]]:
    """The conditions (and their parameters) for a project's events in [since, until)."""
    where = ["project_id = ?"]
    params: list[Any] = [project_id]
    if since is not None:
        where.append("timestamp >= ?")
        params.append(since)
    if until is not None:
        where.append("timestamp < ?")
        params.append(until)
    return where, params


def _parameters(cursor: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """The named parameters ($name) a statement takes."""
    try:
        return set().union(*(s.named_parameters for s in cursor.extract_statements(sql)))
    except duckdb.Error:
        return set()  # running it says what is wrong


def _limited(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    timeout: float,
    max_rows: int,
    field: str,
    parameters: dict[str, Any] | None = None,
) -> QueryResult:
    """Run with a time limit (interrupting the query) and a row limit; errors are 400s."""
    timer = threading.Timer(timeout, cursor.interrupt)
    timer.start()
    try:
        cursor.execute(sql, parameters)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchmany(max_rows + 1)
    except duckdb.InterruptException:
        raise BadRequest(
            f"{field}: the query ran longer than the {timeout:g} s time limit", field=field
        ) from None
    except duckdb.Error as exc:
        raise BadRequest(f"{field}: {_first_line(exc)}", field=field) from None
    finally:
        timer.cancel()
    return QueryResult(
        columns=columns,
        rows=[[plain_value(v) for v in row] for row in rows[:max_rows]],
        truncated=len(rows) > max_rows,
    )


FETCH_ROWS = 256  # rows DuckDB hands over at a time, as Arrow, on the SQL endpoint


def _streamed(
    cursor: duckdb.DuckDBPyConnection,
    back: duckdb.DuckDBPyConnection,
    sql: str,
    timeout: float,
    max_rows: int,
    max_bytes: int,
) -> QueryResult:
    """A user's query read as a stream of Arrow batches, stopped as soon as the answer holds
    `max_rows` rows or about `max_bytes` bytes (fetching a result whole would build all of it
    first), within one time limit for running and reading both. Each kept batch goes back
    through DuckDB (on `back`, another cursor) to Python values, so they are the ones
    `fetchmany` would give."""
    deadline = time.monotonic() + timeout
    timer = threading.Timer(timeout, cursor.interrupt)
    timer.start()
    rows: list[list[Any]] = []
    size, truncated = 0, False
    try:
        relation = cursor.sql(sql)
        if relation is None:
            return QueryResult(columns=[], rows=[])
        columns = list(relation.columns)
        for batch in relation.to_arrow_reader(FETCH_ROWS):
            take = batch.slice(0, max(0, max_rows - len(rows)))
            truncated = take.num_rows < batch.num_rows
            if size + take.nbytes > max_bytes:
                fits = 0
                while fits < take.num_rows and size + take.slice(0, fits + 1).nbytes <= max_bytes:
                    fits += 1
                take, truncated = take.slice(0, fits), True
            size += take.nbytes
            if take.num_rows:
                values = back.from_arrow(take).fetchall()
                rows += [[plain_value(v) for v in row] for row in values]
            if time.monotonic() > deadline:
                raise duckdb.InterruptException("the time limit passed while reading rows")
            if truncated:
                break
    except duckdb.InterruptException:
        raise BadRequest(
            f"sql: the query ran longer than the {timeout:g} s time limit", field="sql"
        ) from None
    except duckdb.Error as exc:
        raise BadRequest(f"sql: {_first_line(exc)}", field="sql") from None
    finally:
        timer.cancel()
    return QueryResult(columns=columns, rows=rows, truncated=truncated)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_warehouse(url: str, settings: Settings) -> DuckDBWarehouse:
    return DuckDBWarehouse(
        file_path(url),
        checkpoint_wal_mb=settings.checkpoint_wal_mb,
        memory_mb=settings.query_memory_mb,
        threads=settings.query_threads,
        nice=WORKERS_NICE if settings.query_nice > 0 else 0,
        reserve_bytes=settings.disk_reserve_mb << 20,
    )
