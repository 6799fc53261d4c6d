"""The forwarders in a process of their own, at a lower CPU priority.

Forwarding is Python work per event (payloads, JSON, SQL). In the server's process it would
share the GIL and the cores with ingest, so a busy destination would slow acknowledgements:
measured, two destinations in threads took ingest of 100-event batches down to 15-25% of
what it was without them (bench/RESULTS.md). In a child process, niced, the forwarders take
the CPU that ingest leaves: under a saturating load they fall behind (the Log keeps what they
have not delivered) and catch up when it eases.

The child follows the Log through a `LogReader` and keeps its state in the metadata database,
as the forwarders in a thread do; over a pipe it sends each delivery entry (for the metrics
and the live debugger, which live in the server) and, four times a second, each running
forwarder's snapshot (for the status API); the server sends pokes, syncs and the stop. A
child that dies is started again after a second.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

from roost.config import Settings
from roost.consumers.forwarder import Forwarders, Report, Snapshot
from roost.consumers.inflight import Inflight, reading
from roost.storage.backends import open_log_reader
from roost.storage.metadata.destinations import DestinationStore

log = logging.getLogger("roost.forwarder")
STATUS_EVERY = 0.25  # seconds between the child's snapshots
RESTART_AFTER = 1.0
WATCH_EVERY = 2.0  # seconds between looks for a first enabled destination, with no child yet


class ForwarderProcess:
    """The server's side: starts the child, relays what it reports, answers for it."""

    def __init__(
        self,
        settings: Settings,
        store: DestinationStore,
        report: Report,
        last_offset: Callable[[], int],
        inflight: Inflight,
    ) -> None:
        self.settings = settings
        self.inflight = inflight
        self.store = store
        self.report = report
        self.last_offset = last_offset
        self.snapshots: dict[int, Snapshot] = {}
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded server
        self.process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._relay: threading.Thread | None = None
        self._stopping = False
        self._tokens = itertools.count(1)
        self._synced: dict[int, threading.Event] = {}
        self._watch: threading.Thread | None = None
        self._woken = threading.Event()
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """The child, once a destination is enabled: a server without one runs no second
        process (a Python process holds ~80 MB). Until then a thread looks every few seconds
        (a destination made with the CLI), and a change through the API starts it at once."""
        if self._wanted():
            self._start_child()
            return
        self._watch = threading.Thread(target=self._watching, name="roost-forwarders-watch",
                                       daemon=True)  # fmt: skip
        self._watch.start()

    def _wanted(self) -> bool:
        return any(d.enabled for d in self.store.configured())

    def _watching(self) -> None:
        """Every WATCH_EVERY seconds, or at once when poked (a change through the API, which
        may as well be a destination disabled or deleted): is one enabled now?"""
        while not self._stopping:
            self._woken.wait(WATCH_EVERY)
            self._woken.clear()
            if self._stopping:
                return
            try:
                wanted = self._wanted()
            except Exception:
                log.exception("could not read the destinations")
                continue
            if wanted:
                with self._start_lock:
                    if not self._stopping and self.process is None:
                        self._start_child()
                return

    def _start_child(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=run_child,
            args=(self.settings, theirs, self.inflight.shared),
            name="roost-forwarders",
            daemon=True,
        )
        process.start()
        theirs.close()
        self.process, self._conn = process, ours
        self._relay = threading.Thread(
            target=self._receive, args=(ours,), name="roost-forwarders-relay", daemon=True
        )
        self._relay.start()

    def _send(self, *message: Any) -> bool:
        with self._send_lock:
            if self._conn is None:
                return False
            try:
                self._conn.send(message)
                return True
            except (OSError, ValueError):
                return False

    def _receive(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "delivery":
                self.report(message[1], message[2])
            elif kind == "status":
                self.snapshots = message[1]
            elif kind == "synced":
                self.snapshots = message[2]
                waiter = self._synced.pop(message[1], None)
                if waiter is not None:
                    waiter.set()
        if not self._stopping:
            log.error("the forwarders' process ended; starting it again")
            time.sleep(RESTART_AFTER)
            if not self._stopping:
                self._start_child()

    def poke(self) -> None:
        if self.process is None:
            self._woken.set()  # the watch looks now
            return
        self._send("poke")

    def sync(self, timeout: float = 30.0) -> None:
        """Have the child take the configuration as it is now; wait until it has."""
        if self.process is None:
            with self._start_lock:
                if self.process is None and not self._stopping and self._wanted():
                    self._start_child()
            if self.process is None:
                return
        token = next(self._tokens)
        done = self._synced[token] = threading.Event()
        if self._send("sync", token):
            done.wait(timeout)
        self._synced.pop(token, None)

    def get(self, destination_id: int) -> Snapshot | None:
        return self.snapshots.get(destination_id)

    def holds(self) -> int:
        """The lowest saved cursor of an enabled destination (the child saves as it goes)."""
        lowest = self.store.lowest_cursor()
        return self.last_offset() if lowest is None else lowest

    def stop(self) -> None:
        self._stopping = True
        self._woken.set()
        if self._watch is not None:
            self._watch.join(5)
        with self._start_lock:
            process = self.process
        if process is None:
            return
        self._send("stop")
        process.join(60)  # each forwarder finishes its batch and saves its cursor
        if process.is_alive():
            process.terminate()
            process.join(5)
        with self._send_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._relay is not None:
            self._relay.join(5)


def run_child(settings: Settings, conn: Connection, inflight: Any) -> None:
    """The child: the forwarders, the pipe, until told to stop or the server is gone."""
    from roost.logs import configure
    from roost.storage.metadata import Metadata

    configure(settings.log_level, settings.log_format)
    # A signal to the whole process group (Ctrl-C in a terminal, systemd stopping the unit)
    # is the server's to act on: it stops this process through the pipe once what is in
    # flight is done, and a server gone for good closes the pipe, which ends it too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if settings.forwarders_nice:
        try:
            os.nice(settings.forwarders_nice)
        except OSError:
            log.warning("could not lower the forwarders' priority")
    lock = threading.Lock()

    def send(*message: Any) -> None:
        with lock:
            conn.send(message)

    metadata = Metadata(settings.resolved_metadata_url())
    reader = open_log_reader(settings)
    forwarders = Forwarders(
        reader,
        DestinationStore(metadata.engine),
        lambda pid, entry: send("delivery", pid, entry),
        busy=reading(inflight, settings.forwarders_yield_at).busy,
        retention=timedelta(days=settings.trace_retention_days),
    )
    forwarders.sync()
    forwarders.start()
    try:
        while True:
            try:
                if conn.poll(STATUS_EVERY):
                    message = conn.recv()
                    if message[0] == "stop":
                        break
                    if message[0] == "poke":
                        forwarders.poke()
                    elif message[0] == "sync":
                        forwarders.sync()
                        send("synced", message[1], forwarders.snapshots())
                        continue
                send("status", forwarders.snapshots())
            except (EOFError, OSError):
                break  # the server is gone
    finally:
        forwarders.stop()
        reader.close_sync()
        metadata.close()
