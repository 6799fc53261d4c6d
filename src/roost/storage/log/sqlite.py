"""The embedded Log: an append-only SQLite table in WAL mode, one row per group commit.

Chosen over appending to DuckDB directly by benchmark (bench/RESULTS.md): a DuckDB commit
costs milliseconds whatever its size and its checkpoints stall every commit behind them,
while a SQLite commit with `synchronous=FULL` is one WAL append and one fsync. Events are
stored whole, as one JSON array per commit (a row per event cost more than the rest of the
commit), and that JSON is what the Loader hands the Warehouse, which parses it itself.

SQLite's automatic checkpoints are off on the writer's connection (they would run inside a
commit); `checkpoint()` runs a PASSIVE one from another connection, which never blocks it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from roost import metrics
from roost.errors import BackendError
from roost.model import Event, LoggedEvent
from roost.storage.disk import Room, file_path
from roost.storage.log import Erased, Group, logged_events
from roost.storage.log.group_commit import GroupCommit

if TYPE_CHECKING:
    from roost.config import Settings

log = logging.getLogger("roost.storage")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[Event]).decode

CHECKPOINT_BYTES = 64 << 20  # appended between the Log's own checkpoints
FINISH_FRAMES = 256  # WAL frames (pages) left for the writer to copy between two commits
IDENTITY_TYPES = frozenset({"identify", "alias", "group"})  # what profiles are made of


def tombstone(event: Event) -> Event:
    """What an erased event leaves in the Log: its messageId and times, in project 0, which no
    query, forwarder or profile reads. Nothing personal is left."""
    return Event(
        message_id=event.message_id,
        project_id=0,
        dialect=event.dialect,
        type="track",
        timestamp=event.timestamp,
        received_at=event.received_at,
    )


def truncate_wal(conn: sqlite3.Connection) -> bool:
    """A TRUNCATE checkpoint: the WAL copied into the database file and cut to nothing; it
    waits (busy_timeout) for readers on older snapshots and writers. Whether it completed."""
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return row is not None and row[0] == 0


class _Reading(ABC):
    """Reading the log table, on a connection per thread (WAL readers never block the writer).
    The writing Log and the read-only reader of the forwarders' process each say where the
    Log ends their own way."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's own read connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _close_readers(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    @abstractmethod
    def last_offset(self) -> int: ...

    def count_between(self, after_offset: int, up_to: int) -> int:
        """Offsets are dense here (an erased event keeps its offset as a tombstone)."""
        return max(0, up_to - after_offset)

    def read_sync(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        return logged_events(self.read_groups(after_offset, limit), after_offset, limit)

    def read_groups(
        self, after_offset: int, limit: int, identities_only: bool = False
    ) -> list[Group]:
        """The stored groups holding the events after `after_offset`, about `limit` of them.

        The first group may start at or before `after_offset`: readers skip those events.
        With `identities_only`, only groups holding identify, alias or group calls.
        """
        reader = self._reader()
        start = reader.execute(
            "SELECT max(first_offset) FROM log WHERE first_offset <= ?", (after_offset + 1,)
        ).fetchone()[0]
        rows = reader.execute(
            "SELECT first_offset, count, events FROM log WHERE first_offset >= ? "
            + ("AND identity_events > 0 " if identities_only else "")
            + "ORDER BY first_offset",
            (start if start is not None else 0,),
        )
        groups: list[Group] = []
        count = 0
        for first, n, blob in rows:
            groups.append(Group(first, n, blob))
            count += first + n - 1 - max(first - 1, after_offset)
            if count >= limit:
                break
        rows.close()
        return groups

    def offset_before(self, received_at: float) -> int:
        """The offset after which the events received at or after a time start."""
        row = (
            self._reader()
            .execute("SELECT min(first_offset) FROM log WHERE received_at >= ?", (received_at,))
            .fetchone()
        )
        return self.last_offset() if row[0] is None else int(row[0]) - 1


class SQLiteLogReader(_Reading):
    """The Log as a process other than the writer's sees it (the forwarders' process)."""

    def last_offset(self) -> int:
        row = (
            self._reader()
            .execute("SELECT first_offset + count - 1 FROM log ORDER BY first_offset DESC LIMIT 1")
            .fetchone()
        )
        return int(row[0]) if row else 0

    def close_sync(self) -> None:
        self._close_readers()


class SQLiteLog(_Reading):
    def __init__(
        self,
        path: str | Path,
        *,
        commit_max_events: int = 20000,
        on_commit: Callable[[int, int, bytes], None] | None = None,
        reserve_bytes: int = 0,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
    ) -> None:
        super().__init__(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.room = Room(self.path.parent, reserve_bytes)
        self._on_commit = on_commit
        self._conn = self._connect()
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        # a WAL started over is cut back to this, not left at its largest
        self._conn.execute(f"PRAGMA journal_size_limit={int(checkpoint_bytes)}")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS log (first_offset INTEGER PRIMARY KEY, "
            "count INTEGER NOT NULL, received_at REAL NOT NULL, identity_events INTEGER NOT NULL, "
            "events BLOB NOT NULL)"  # the blob last: reading the columns before it skips it
        )
        row = self._conn.execute(
            "SELECT coalesce(max(first_offset + count - 1), 0) FROM log"
        ).fetchone()
        self._last_offset = int(row[0])
        self._writer = GroupCommit(self._commit, max_events=commit_max_events)
        self._closed = False
        # Checkpoints while appends go on: the Loader asks for one when it is idle, which
        # sustained load never is; past `checkpoint_bytes` appended this thread does one
        self._checkpoint_bytes = checkpoint_bytes
        self._appended = 0
        self._wanted = threading.Event()
        self._finish = False  # the writer completes the thread's checkpoint before its next
        self._checkpointer = threading.Thread(
            target=self._checkpoints, name="roost-log-checkpoints", daemon=True
        )
        self._checkpointer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")  # what an erasure rewrites is zeroed, not freed
        return conn

    def subscribe(self, on_commit: Callable[[int, int, bytes], None]) -> None:
        """Call `on_commit(first_offset, count, json_array)` after each commit."""
        self._on_commit = on_commit

    # Log

    def append(self, events: Sequence[Event]) -> asyncio.Future[list[int]]:
        if not self.room.enough():  # refused whole, before anything is written
            refused: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
            refused.set_exception(BackendError(self.room.problem()))
            return refused
        return self._writer.submit(events)

    def last_offset(self) -> int:
        return self._last_offset

    async def read(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        return await asyncio.to_thread(self.read_sync, after_offset, limit)

    def trim(self, received_before: float, loaded_up_to: int) -> int:
        """Delete groups received before a time whose events are all loaded; return how many.

        The newest group is always kept: it carries the offset the next append continues from.
        """
        cursor = self._reader().execute(
            "DELETE FROM log WHERE received_at < ? AND first_offset + count - 1 <= ? "
            "AND first_offset < (SELECT max(first_offset) FROM log)",
            (received_before, loaded_up_to),
        )
        return cursor.rowcount

    def erase(
        self, project_id: int, matches: Callable[[Event], bool], hints: Sequence[str] = ()
    ) -> Erased:
        """Replace the project's events that match with tombstones, group by group.

        Offsets stay where they were, so every consumer's cursor stays right. `hints`, when
        given, are strings (ids) one of which a group must contain to be looked at. Each
        group is its own short write, so appends wait at most for one of them.
        """
        conn = self._reader()
        query = "SELECT first_offset FROM log"
        needles = [_encode(h) for h in hints]
        if needles:
            query += " WHERE " + " OR ".join("instr(events, ?) > 0" for _ in needles)
        firsts = [row[0] for row in conn.execute(query + " ORDER BY first_offset", needles)]
        erased: list[str] = []
        for first in firsts:
            row = conn.execute("SELECT events FROM log WHERE first_offset = ?", (first,)).fetchone()
            if row is None:  # trimmed meanwhile
                continue
            events = _decode(row[0])
            hits = [i for i, e in enumerate(events) if e.project_id == project_id and matches(e)]
            if not hits:
                continue
            for i in hits:
                events[i] = tombstone(events[i])
            identity_events = sum(1 for e in events if e.type in IDENTITY_TYPES)
            conn.execute(
                "UPDATE log SET events = ?, identity_events = ? WHERE first_offset = ?",
                (_encode(events), identity_events, first),
            )
            erased += [events[i].message_id for i in hits]
        return Erased(erased, [])

    def checkpoint(self) -> None:
        self._reader().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def scrub(self) -> bool:
        """Copy the WAL into the file and empty it, so the frames that held erased rows are
        gone too (the rows themselves were zeroed: secure_delete). False when readers kept it
        busy: try again later."""
        return truncate_wal(self._reader())

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def drain(self) -> None:
        """Commit what is queued and take no more; reads still work."""
        self._writer.close()

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._wanted.set()
        self._checkpointer.join()
        self._close_readers()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # a full disk: the WAL is replayed at the next start
            log.warning("log checkpoint at close failed: %s", exc)
        finally:
            self._conn.close()

    # The writer thread

    def _commit(self, events: list[Event]) -> int:
        started = time.perf_counter()
        first = self._last_offset + 1
        blob = _encode(events)
        identity_events = sum(1 for e in events if e.type in IDENTITY_TYPES)
        conn = self._conn
        if self._finish:  # the few frames since the thread's checkpoint: then the WAL restarts
            self._finish = False
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # not this group's failure: the next one tries again
                log.warning("log checkpoint failed: %s", exc)
        conn.execute(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?)",
            (first, len(events), events[0].received_at.timestamp(), identity_events, blob),
        )  # one statement, autocommitted: one WAL append and one fsync
        self._last_offset = first + len(events) - 1
        self._appended += len(blob)
        if self._appended >= self._checkpoint_bytes:
            self._appended = 0
            self._wanted.set()
        metrics.LOG_COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.LOG_BATCH_EVENTS.observe(len(events))
        if self._on_commit is not None:
            self._on_commit(first, len(events), blob)
        return first

    def _checkpoints(self) -> None:
        """PASSIVE: copies what it can without waiting for, or holding up, readers or the
        writer. Appends go on meanwhile, so it cannot be complete: it goes round again until
        few frames are left, the writer copies those (a few ms, between two commits), and
        the WAL starts over."""
        conn = self._connect()
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._closed:
                    return
                try:
                    for _ in range(8):  # each round copies what came during the last
                        _, frames, copied = conn.execute(
                            "PRAGMA wal_checkpoint(PASSIVE)"
                        ).fetchone()
                        if frames - copied <= FINISH_FRAMES:
                            break
                    self._finish = True
                except sqlite3.Error as exc:  # a full disk: the next one tries again
                    log.warning("log checkpoint failed: %s", exc)
        finally:
            conn.close()


def open_log(url: str, settings: Settings) -> SQLiteLog:
    return SQLiteLog(
        file_path(url),
        commit_max_events=settings.commit_max_events,
        reserve_bytes=settings.disk_reserve_mb << 20,
    )


def open_reader(url: str, settings: Settings) -> SQLiteLogReader:
    return SQLiteLogReader(file_path(url))
