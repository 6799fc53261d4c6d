"""A lease: at most one process holds it, and a process that dies frees it at once.

`roost worker` takes one before it runs the Log's consumers, so any number of workers can be
started and exactly one works; the others wait and one takes over when it dies. The lock is
the metadata database's, held by a connection (or an open file) of the holder's own, never
by a row with a timeout: PostgreSQL ends the session of a killed process and releases its
advisory locks with it, and the kernel closes a killed process's files (SQLite metadata:
the workers share one machine), so there is no expiry to wait for or to get wrong.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import zlib
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa

log = logging.getLogger("roost.consumers.lease")


class Lease(Protocol):
    def try_take(self) -> bool:
        """Take the lease if no one holds it; True when this process holds it now."""
        ...

    def held(self) -> bool:
        """Still ours (the connection that holds it is alive)."""
        ...

    def release(self) -> None: ...


class AdvisoryLease:
    """A PostgreSQL session-level advisory lock, on a connection kept for it alone."""

    def __init__(self, url: str, name: str) -> None:
        self.key = zlib.crc32(f"roost:{name}".encode())  # a stable 32-bit key per name
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._conn: sa.Connection | None = None

    def try_take(self) -> bool:
        if self._conn is None:
            self._conn = self.engine.connect()
        taken = self._conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
        ).scalar()
        self._conn.commit()
        return bool(taken)

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            mine = self._conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objid = :key AND pid = pg_backend_pid() AND granted"
                ),
                {"key": self.key},
            ).scalar()
            self._conn.commit()
        except sa.exc.DBAPIError:
            return False
        return bool(mine)

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.close()  # the session ends, and its locks with it
            self._conn = None
        self.engine.dispose()


class FileLease:
    """An exclusive lock on a file beside the data (SQLite metadata: one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_take(self) -> bool:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def held(self) -> bool:
        return self._file is not None and not self._file.closed

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def lease_for(metadata_url: str, data_dir: Path, name: str) -> Lease:
    if sa.engine.make_url(metadata_url).get_backend_name() == "postgresql":
        return AdvisoryLease(metadata_url, name)
    return FileLease(data_dir / f"{name}.lease")


def wait_for(lease: Lease, stopping: threading.Event, every: float = 1.0) -> bool:
    """Take the lease, waiting while another process holds it; False if asked to stop."""
    announced = False
    while not stopping.is_set():
        if lease.try_take():
            return True
        if not announced:
            log.info("another worker holds the lease; standing by to take over")
            announced = True
        stopping.wait(every)
    return False


def keep(lease: Lease, stopping: threading.Event, every: float = 1.0) -> bool:
    """Wait until asked to stop (True) or the lease is lost (False)."""
    while not stopping.wait(every):
        if not lease.held():
            return False
    return True
