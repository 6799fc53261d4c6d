"""Forwarders: one per destination, each following the Log with its own durable cursor.

A forwarder is three parts, as a sink is in Vector: what to send (outbound.py: the events
the destination takes, mapped), how to send it (delivery.py: tries, backoff, dead letters)
and, here, the loop with its cursor. It reads the Log after its cursor, keeps what Outbound
takes, and gathers it into a batch until it holds `batch_count` events or `batch_bytes`, or
its first event has waited `batch_seconds`; Delivery tries the batch until it is delivered
or set aside as a dead letter. Only then does the cursor
move, in the same transaction as the outcome: after a crash the last batch may be sent again
(destinations deduplicate by messageId where they can), never skipped. Each forwarder runs
on its own thread, so a slow or failing destination holds back only itself; the Log keeps
what any forwarder still needs. `Forwarders` keeps one running per enabled destination; it
runs in the server's process (`forwarders = "thread"`) or in a process of its own
(consumers/forwarder_process.py, the default).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from roost import metrics
from roost.consumers.delivery import Delivery
from roost.consumers.follower import Follower
from roost.consumers.outbound import Outbound
from roost.destinations.base import Destination as Plugin
from roost.destinations.base import factory
from roost.model import Event
from roost.storage.log import LogReader
from roost.storage.metadata.destinations import Destination, DestinationStore, State

log = logging.getLogger("roost.forwarder")
_encode = msgspec.json.encode
SAVE_IDLE_EVERY = 1.0  # seconds between saves of a cursor moved past events not for it
YIELD_SECONDS = 0.5  # the pause before each batch while ingest is busy

# Where a forwarder's delivery entries go: (project id, entry). In the server that is the
# metrics and the live debugger (`reporter`); in the forwarders' process, a pipe to them.
Report = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True)
class Snapshot:
    """A running forwarder's status beyond its saved state, for the API."""

    state: State
    pending: int = 0
    recent: list[dict[str, Any]] = field(default_factory=list)
    retry_at: float | None = None  # epoch seconds of the next try of a failing batch
    skipped: int = 0


def count(entry: dict[str, Any]) -> None:
    """The delivery metrics, from a delivery entry (so they count where the metrics are)."""
    name, status = entry["destination"], entry["status"]
    if status == "delivered":
        metrics.DELIVERED.labels(name).inc(entry["count"])
    elif status == "retrying":
        metrics.DELIVERY_FAILURES.labels(name, "yes").inc()
    elif status == "dead_letter":
        metrics.DELIVERY_FAILURES.labels(name, "no").inc()
        metrics.DEAD_LETTERS.labels(name).inc(entry["count"])


def reporter(deliver_to: Callable[[int, dict[str, Any]], None] | None) -> Report:
    """Count each entry, then hand it on (to the debugger's `delivery`)."""

    def report(project_id: int, entry: dict[str, Any]) -> None:
        count(entry)
        if deliver_to is not None:
            deliver_to(project_id, entry)

    return report


TRACE_RETENTION = timedelta(days=7)  # how long a delivered batch's record is kept for traces
# (the setting trace_retention_days)
FORGET_EVERY = 3600.0


def begins_at(log: LogReader, destination: Destination) -> int:
    """Where a new destination's forwarder starts: after what arrived before it was made."""
    made = destination.created_at or _now()
    return log.offset_before(made.replace(tzinfo=UTC).timestamp())


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Forwarder(Follower):
    def __init__(
        self,
        destination: Destination,
        plugin: Plugin,
        log: LogReader,
        store: DestinationStore,
        report: Report | None = None,
        *,
        busy: Callable[[], bool] | None = None,
        interval: float = 0.05,
        read_limit: int = 5000,
        jitter: Callable[[], float] = random.random,
        retention: timedelta = TRACE_RETENTION,
    ) -> None:
        super().__init__(interval)
        self.name = f"roost-forwarder-{destination.name}"
        self.retention = retention
        self.destination = destination
        self.plugin = plugin
        self.log = log
        self.store = store
        self.report = report
        self.busy = busy
        self.read_limit = read_limit
        self.outbound = Outbound(destination)
        self.delivery = Delivery(
            destination, plugin, name=self.name, publish=self._publish, failed=self._failed,
            pause=self._pause, jitter=jitter,
        )  # fmt: skip
        found = store.state(destination.id)
        if found is None:  # a new destination gets what arrived since it was made
            found = State(log_offset=begins_at(log, destination))
            store.record(destination.id, found)
        self.state = found
        self.scan = found.log_offset  # read up to here; pending holds what is not delivered
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.pending_bytes = 0
        self.pending_since = 0.0
        self.saved_at = time.monotonic()
        self.forgot_at = float("-inf")
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)
        self.skipped = 0  # events opted out by their `integrations`, since this start
        self.skipping: list[str] = []  # their messageIds, until the next debugger entry
        self.skipping_from = 0
        self._requests = threading.Lock()
        self._rewind: int | None = None
        self._letters = False

    # Requests from other threads (the manager, the API)

    def rewind(self, after_offset: int) -> None:
        with self._requests:
            self._rewind = after_offset
        self.poke()

    def replay_letters(self) -> None:
        self._letters = True
        self.poke()

    def position(self) -> int:
        return self.state.log_offset

    def snapshot(self) -> Snapshot:
        recent = list(self.recent.copy())
        return Snapshot(self.state, len(self.pending), recent, self.delivery.retry_at, self.skipped)

    # The thread

    def step(self) -> None:
        with self._requests:
            rewind, self._rewind = self._rewind, None
        if rewind is not None:
            self.pending.clear()
            self.pending_bytes = 0
            self.scan = min(rewind, self.log.last_offset())
            self.state = replace(self.state, log_offset=self.scan)
            self.store.record(self.destination.id, self.state)
            log.info("%s rewound to offset %d", self.name, self.scan)
        if self._letters:
            self._letters = False
            self._replay_letters()
        d = self.destination
        while not self._stopping and self.scan < self.log.last_offset():
            for logged in self.log.read_sync(self.scan, self.read_limit):
                if self._stopping:
                    return
                takes = self.outbound.takes(logged.event)
                if takes and not self.outbound.opted_in(logged.event):
                    self._skip(logged.offset, logged.event)
                    takes = False
                if takes:
                    body = self.outbound.payload(logged.event)
                    size = len(_encode(body))
                    full = self.pending and self.pending_bytes + size > d.batch_bytes
                    if full and not self._flush(up_to=self.scan):
                        return
                    if not self.pending:
                        self.pending_since = time.monotonic()
                    self.pending.append((logged.offset, body))
                    self.pending_bytes += size
                    self.scan = logged.offset
                    if len(self.pending) >= d.batch_count and not self._flush(up_to=self.scan):
                        return
                else:
                    self.scan = logged.offset
            self._report_skipped()
            if self._due() and not self._flush(up_to=self.scan):
                return
        if self._due():
            self._flush(up_to=self.scan)
        elif not self.pending and self.scan > self.state.log_offset:
            self.state = replace(self.state, log_offset=self.scan)
            if time.monotonic() - self.saved_at >= SAVE_IDLE_EVERY:
                self._save()

    def _skip(self, offset: int, event: Event) -> None:
        self.skipped += 1
        if not self.skipping:
            self.skipping_from = offset
        self.skipping.append(event.message_id)
        metrics.SKIPPED.labels(self.destination.name, "integrations").inc()

    def _report_skipped(self) -> None:
        """One debugger entry for the events the last read opted out of this destination."""
        if not self.skipping:
            return
        ids, self.skipping = self.skipping, []
        self._publish("skipped", ids, self.skipping_from, self.scan, {"reason": "integrations"})

    def _due(self) -> bool:
        waited = time.monotonic() - self.pending_since
        return bool(self.pending) and waited >= self.destination.batch_seconds

    def _save(self) -> None:
        self.store.record(self.destination.id, self.state)
        self.saved_at = time.monotonic()

    def finish(self) -> None:
        self._save()  # the cursor may have moved past events not for this destination

    def _flush(self, up_to: int) -> bool:
        """Deliver the pending batch; False if the forwarder is stopping before it is done."""
        if self.busy is not None and self.busy():  # ingest first: the Log keeps the rest
            with self._wake:
                if self._wake.wait_for(lambda: self._stopping, timeout=YIELD_SECONDS):
                    return False
        events = [body for _, body in self.pending]
        first, last = self.pending[0][0], self.pending[-1][0]
        tried = self.delivery.deliver(events, first, last)
        if tried is None:
            return False
        if tried.delivered:
            self.state = replace(
                self.state,
                log_offset=up_to,
                delivered=self.state.delivered + len(events),
                last_success_at=_now(),
            )
            batch = (first, last, len(events), tried.attempts)
            self.store.record(self.destination.id, self.state, delivered=batch)
            if time.monotonic() - self.forgot_at >= FORGET_EVERY:  # what traces may still ask
                self.forgot_at = time.monotonic()
                self.store.forget_deliveries(self.destination.id, _now() - self.retention)
        else:
            self.state = replace(
                self.state,
                log_offset=up_to,
                dead_lettered=self.state.dead_lettered + len(events),
            )
            self.store.record(
                self.destination.id,
                self.state,
                letter=(first, last, events, tried.error, tried.attempts),
            )
        self.saved_at = time.monotonic()
        self.pending.clear()
        self.pending_bytes = 0
        return True

    def _replay_letters(self) -> None:
        for letter in self.store.letters(self.destination.id, status="replay"):
            tried = self.delivery.deliver(
                letter.events, letter.first_offset, letter.last_offset, letter=letter.id
            )
            if tried is None:
                return
            if tried.delivered:
                self.state = replace(
                    self.state,
                    delivered=self.state.delivered + letter.count,
                    dead_lettered=max(0, self.state.dead_lettered - letter.count),
                    last_success_at=_now(),
                )
                self.store.record(self.destination.id, self.state, replayed=letter.id)
            else:
                self.store.letter_failed(letter.id, tried.error, letter.attempts + tried.attempts)

    def _failed(self, message: str) -> None:
        self.state = replace(
            self.state,
            failures=self.state.failures + 1,
            last_error=message,
            last_error_at=_now(),
        )
        self._save_failure()

    def _pause(self, seconds: float) -> bool:
        with self._wake:
            return self._wake.wait_for(lambda: self._stopping, timeout=seconds)

    def _save_failure(self) -> None:
        saved = self.store.state(self.destination.id)
        if saved is not None:  # the cursor stays where it was saved; the failure is new
            self.store.record(
                self.destination.id,
                replace(
                    saved,
                    failures=self.state.failures,
                    last_error=self.state.last_error,
                    last_error_at=self.state.last_error_at,
                ),
            )

    def _publish(
        self, status: str, ids: list[str], first: int, last: int, details: dict[str, Any]
    ) -> None:
        """A delivery entry for the debugger (with the messageIds) and `recent` (without)."""
        entry: dict[str, Any] = {
            "outcome": "delivery",
            "destination": self.destination.name,
            "status": status,
            "count": len(ids),
            "first_offset": first,
            "last_offset": last,
            **{k: v for k, v in details.items() if v is not None},
            "at": datetime.now(UTC).isoformat(),
            "message_ids": ids,
        }
        self.recent.append({k: v for k, v in entry.items() if k != "message_ids"})
        if self.report is not None:
            self.report(self.destination.project_id, entry)


class Forwarders(Follower):
    """Keeps one running Forwarder per enabled destination, as the configuration changes."""

    name = "roost-forwarders"

    def __init__(
        self,
        log: LogReader,
        store: DestinationStore,
        report: Report | None = None,
        interval: float = 1.0,
        forwarder_interval: float = 0.05,
        busy: Callable[[], bool] | None = None,
        retention: timedelta = TRACE_RETENTION,
    ) -> None:
        super().__init__(interval)
        self.log = log
        self.store = store
        self.report = report
        self.busy = busy
        self.retention = retention
        self.forwarder_interval = forwarder_interval
        self.running: dict[int, Forwarder] = {}
        self._lock = threading.Lock()

    def position(self) -> int:
        return self.log.last_offset()

    def holds(self) -> int:
        """The lowest cursor of a running forwarder: the Log keeps what is after it."""
        with self._lock:
            cursors = [f.position() for f in self.running.values()]
        return min(cursors) if cursors else self.log.last_offset()

    def get(self, destination_id: int) -> Snapshot | None:
        running = self.running.get(destination_id)
        return running.snapshot() if running is not None else None

    def snapshots(self) -> dict[int, Snapshot]:
        with self._lock:
            return {id_: f.snapshot() for id_, f in self.running.items()}

    def step(self) -> None:
        self.sync()

    def sync(self) -> None:
        configured = self.store.configured()
        wanted = {d.id: d for d in configured if d.enabled}
        existing = {d.id for d in configured}
        with self._lock:
            for id_, forwarder in list(self.running.items()):
                d = wanted.get(id_)
                if d is None or d.updated_at != forwarder.destination.updated_at:
                    self._stop(self.running.pop(id_))
                if id_ not in existing:  # deleted, not just disabled
                    self.store.forget(id_)
            for id_, d in wanted.items():
                if id_ not in self.running:
                    try:
                        plugin = factory(d.kind)(dict(d.options))
                    except Exception:
                        log.exception("destination %s could not start", d.name)
                        continue
                    forwarder = Forwarder(
                        d, plugin, self.log, self.store, self.report,
                        busy=self.busy, interval=self.forwarder_interval, retention=self.retention,
                    )  # fmt: skip
                    forwarder.replay_letters()  # letters marked while nothing ran
                    forwarder.start()
                    self.running[id_] = forwarder
                if d.rewind_to is not None:
                    offset = self.store.take_rewind(id_)
                    if offset is not None:
                        self.running[id_].rewind(offset)
            for id_, forwarder in self.running.items():
                if self.store.letters(id_, status="replay", limit=1):
                    forwarder.replay_letters()

    @staticmethod
    def _stop(forwarder: Forwarder) -> None:
        forwarder.stop()
        forwarder.plugin.close()

    def finish(self) -> None:
        with self._lock:
            for forwarder in self.running.values():
                self._stop(forwarder)
            self.running.clear()


def backlog(log: LogReader, cursor: int, last: int, now: datetime) -> tuple[int, float | None]:
    """The events after `cursor` (up to `last`), and how long the first of them has waited
    (seconds since its receivedAt; None when there is none)."""
    lag = log.count_between(cursor, last)
    first = log.read_sync(cursor, 1) if lag else []
    if not first:
        return lag, None
    return lag, max(0.0, (now - first[0].event.received_at.astimezone(UTC)).total_seconds())


def status(
    destination: Destination,
    store: DestinationStore,
    log: LogReader,
    last: int,
    running: Snapshot | None = None,
) -> dict[str, Any]:
    """A destination's delivery health: cursor, its backlog up to the Log's `last` offset
    (events, the oldest one's wait), counts, last error, retries, dead letters; a destination
    never started (paused) counts from where its forwarder will begin."""
    state = running.state if running is not None else store.state(destination.id)
    cursor = state.log_offset if state else begins_at(log, destination)
    lag, waited = backlog(log, cursor, last, datetime.now(UTC))
    waiting = store.letters(destination.id, status="dead", limit=10_000)

    def when(value: datetime | None) -> str | None:
        return value.replace(tzinfo=UTC).isoformat() if value else None

    out: dict[str, Any] = {
        "name": destination.name,
        "kind": destination.kind,
        "enabled": destination.enabled,
        "running": running is not None,
        "cursor": cursor,
        "lag": lag,
        "oldest_waiting_seconds": None if waited is None else round(waited, 1),
        "pending": running.pending if running is not None else 0,
        "delivered": state.delivered if state else 0,
        "failures": state.failures if state else 0,
        "dead_letters": len(waiting),
        "dead_lettered_events": sum(letter.count for letter in waiting),
        "last_success_at": when(state.last_success_at) if state else None,
        "last_error": state.last_error if state else None,
        "last_error_at": when(state.last_error_at) if state else None,
        "next_retry_at": None,
        "recent": list(running.recent) if running is not None else [],
        "skipped": running.skipped if running is not None else 0,
    }
    if running is not None and running.retry_at is not None:
        out["next_retry_at"] = datetime.fromtimestamp(running.retry_at, UTC).isoformat()
    return out
