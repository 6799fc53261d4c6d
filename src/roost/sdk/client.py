"""The Python client: calls queue events, a background thread sends them in batches.

Only the standard library, so `roost.sdk` imports without the server's dependencies. The
caller's thread does the least it can (a dict, a messageId, a put on a bounded queue that
never blocks); encoding, gzip, HTTP and retries happen on the sender thread. Segment-style
calls go to `/v1/batch`, game events to `/api/v1/events` (100 a request), each a batch of
its own kind.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import http.client
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("roost.sdk")

SEGMENT, GAME = "segment", "game"
PATHS = {SEGMENT: "/v1/batch", GAME: "/api/v1/events"}
MAX_GAME_BATCH = 100  # docs/wire-contracts.md: 1–100 events per game request
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_STOP = object()


@dataclass(frozen=True)
class Failure:
    """What `on_error` is told: why these events were not stored.

    `reason` is `rejected` (Roost refused the event: a 4xx, or one event of a batch),
    `overflow` (the queue was full) or `gave_up` (retries ran out, or `close()` ran out of
    time). Events dropped because of opt-out are not reported: that drop was asked for.
    """

    reason: str
    message: str
    events: Sequence[Mapping[str, Any]]
    status: int | None = None


def _now() -> str:
    return _iso(time.time())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _clean(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(values) if values else {}


class Client:
    """A Roost client. Calls never block or raise on delivery problems; `on_error` hears them.

    `max_queue` bounds the events waiting to be sent (overflow is dropped and counted in
    `dropped`), `batch_size` and `flush_interval` decide when a batch goes (one over
    `max_batch_bytes` goes in halves),
    `max_retries` how often a 5xx, 429 or network error is tried again (exponential backoff
    with jitter, at most `max_backoff` seconds, or what Retry-After says).
    """

    def __init__(
        self,
        write_key: str,
        host: str = "http://127.0.0.1:8000",
        *,
        build_version: str | None = None,
        player_id: str | None = None,
        max_queue: int = 10_000,
        batch_size: int = 100,
        max_batch_bytes: int = 500_000,
        flush_interval: float = 0.5,
        max_retries: int = 8,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        gzip_bodies: bool = True,
        on_error: Callable[[Failure], None] | None = None,
        opt_out: bool = False,
        flush_at_exit: bool = True,
    ) -> None:
        if not write_key:
            raise ValueError("write_key: must not be empty")
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"host: must be an http(s) URL (got {host!r})")
        self.write_key = write_key
        self.host = host.rstrip("/")
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._base_path = parts.path.rstrip("/")
        self.build_version = build_version
        self.player_hash = (
            hashlib.sha256(player_id.encode()).hexdigest() if player_id else uuid.uuid4().hex
        )
        self.session_id = str(uuid.uuid4())
        self.max_queue = max_queue
        self.batch_size = max(1, batch_size)
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.max_retries = max_retries
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.gzip_bodies = gzip_bodies
        self.on_error = on_error
        self.opt_out = opt_out
        self.dropped = 0  # events lost to a full queue
        self.sent = 0  # events Roost acknowledged
        self.failed = 0  # events refused or given up on
        self._lock = threading.Lock()
        self.flush_at_exit = flush_at_exit
        self._start()
        _CLIENTS.add(self)

    # The calls: Segment's spec

    def track(
        self,
        event: str,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        **fields: Any,
    ) -> str | None:
        return self._segment(
            "track", user_id, anonymous_id, fields, event=event, properties=_clean(properties)
        )

    def identify(
        self,
        user_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        **fields: Any,
    ) -> str | None:
        return self._segment("identify", user_id, anonymous_id, fields, traits=_clean(traits))

    def page(
        self,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        category: str | None = None,
        **fields: Any,
    ) -> str | None:
        extra: dict[str, Any] = {"properties": _clean(properties)}
        if name is not None:
            extra["name"] = name
        if category is not None:
            extra["category"] = category
        return self._segment("page", user_id, anonymous_id, fields, **extra)

    def screen(
        self,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        **fields: Any,
    ) -> str | None:
        extra: dict[str, Any] = {"properties": _clean(properties)}
        if name is not None:
            extra["name"] = name
        return self._segment("screen", user_id, anonymous_id, fields, **extra)

    def group(
        self,
        group_id: str,
        traits: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        **fields: Any,
    ) -> str | None:
        return self._segment(
            "group", user_id, anonymous_id, fields, groupId=group_id, traits=_clean(traits)
        )

    def alias(self, previous_id: str, user_id: str, **fields: Any) -> str | None:
        return self._segment("alias", user_id, None, fields, previousId=previous_id)

    def _segment(
        self,
        kind: str,
        user_id: str | None,
        anonymous_id: str | None,
        fields: dict[str, Any],
        **body: Any,
    ) -> str | None:
        if self.opt_out:
            return None
        message_id = fields.pop("message_id", None) or str(uuid.uuid4())
        event: dict[str, Any] = {"type": kind, "messageId": message_id, **body}
        if user_id is not None:
            event["userId"] = user_id
        if anonymous_id is not None:
            event["anonymousId"] = anonymous_id
        timestamp = fields.pop("timestamp", None)
        # A bare clock reading here; the sender thread writes it out (cheaper for the caller)
        event["timestamp"] = (
            timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp or time.time()
        )
        for name in ("context", "integrations"):
            if name in fields:
                event[name] = fields.pop(name)
        if fields:
            raise TypeError(f"unknown fields: {', '.join(sorted(fields))}")
        self._put(SEGMENT, event)
        return message_id

    # The calls: game telemetry (dialect 2)

    def start_session(self) -> None:
        """A new session id and its Session:Start."""
        self.session_id = str(uuid.uuid4())
        self._game("session", "Session:Start")

    def end_session(self) -> None:
        self._game("session", "Session:End")

    def track_progression(
        self, status: str, name: str, value: float | None = None, **dims: Any
    ) -> str | None:
        """`status` Start, Complete or Fail of a run or level: `Start:Run`."""
        return self._game("progression", f"{status}:{name}", value, dims)

    def track_design(self, name: str, value: float | None = None, **dims: Any) -> str | None:
        return self._game("design", name, value, dims)

    def track_resource(self, flow: str, currency: str, amount: float, **dims: Any) -> str | None:
        """`flow` Source (earned) or Sink (spent) of `amount` of a currency: `Source:Gold`."""
        return self._game("resource", f"{flow}:{currency}", amount, dims)

    def track_error(
        self,
        name: str,
        signature: str | None = None,
        data: Mapping[str, Any] | None = None,
        **dims: Any,
    ) -> str | None:
        payload = dict(data or {})
        if signature is not None:
            payload["signature"] = signature
        return self._game("error", name, None, {**dims, "data": payload} if payload else dims)

    def _game(
        self,
        kind: str,
        name: str,
        value: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str | None:
        if self.opt_out:
            return None
        if not self.build_version:
            raise ValueError("build_version: give Client(build_version=...) for game events")
        event_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "build_version": self.build_version,
            "session_id": self.session_id,
            "player_hash": self.player_hash,
            "ts": time.time(),  # written out by the sender thread
            "type": kind,
            "name": name,
            "event_id": event_id,
        }
        if value is not None:
            event["value"] = value
        for key, item in (extra or {}).items():
            if key in ("dim01", "dim02", "dim03", "data"):
                event[key] = item
            else:
                raise TypeError(f"unknown field {key!r}: game events take dim01–dim03 and data")
        self._put(GAME, event)
        return event_id

    # Queue, thread, fork

    def _put(self, kind: str, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((kind, event))
        except queue.Full:
            with self._lock:
                self.dropped += 1
            self._report(Failure("overflow", f"queue full ({self.max_queue} events)", [event]))

    def _start(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(self.max_queue)
        self._pid = os.getpid()
        self._sender = Sender(self)
        self._thread = threading.Thread(target=self._sender.run, name="roost-sdk", daemon=True)
        self._thread.start()

    def _after_fork_hook(self) -> None:
        """In a forked child: the parent's thread did not come along; start one of our own
        with an empty queue (what the parent had queued is the parent's to send)."""
        self._lock = threading.Lock()
        self._start()

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now; True if everything was handled within `timeout`."""
        self._sender.wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            self._sender.wake.set()
            time.sleep(0.005)
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush, then stop the sender thread; what is still undelivered after `timeout` is
        reported to `on_error` as given up."""
        if not self.flush(timeout):
            self._sender.abandon = True
        self._sender.stopping = True
        self._sender.wake.set()
        self._thread.join(timeout)

    def _report(self, failure: Failure) -> None:
        if failure.reason != "overflow":
            with self._lock:
                self.failed += len(failure.events)
        if self.on_error is not None:
            try:
                self.on_error(failure)
            except Exception:  # a callback's bug must not stop delivery
                log.exception("roost.sdk on_error callback failed")
        else:
            log.warning("roost: %d events not stored: %s", len(failure.events), failure.message)


_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for client in list(_CLIENTS):
        if client.flush_at_exit and client._pid == os.getpid():
            client.close(timeout=5.0)


def _after_fork() -> None:
    for client in list(_CLIENTS):
        client._after_fork_hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class Sender:
    """The background thread: takes events off the queue, batches, sends, retries."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.wake = threading.Event()
        self.stopping = False
        self.abandon = False  # close() ran out of time: report what is left instead of retrying
        self.connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        client = self.client
        pending: dict[str, list[dict[str, Any]]] = {SEGMENT: [], GAME: []}
        since: dict[str, float] = {}
        limits = {SEGMENT: client.batch_size, GAME: min(client.batch_size, MAX_GAME_BATCH)}
        while True:
            try:
                kind, event = client._queue.get(timeout=0.02)
                pending[kind].append(event)
                since.setdefault(kind, time.monotonic())
            except queue.Empty:
                pass
            idle = client._queue.empty()
            hurry = self.wake.is_set() or self.stopping
            for name in (SEGMENT, GAME):
                batch = pending[name]
                if not batch:
                    continue
                full = len(batch) >= limits[name]
                old = time.monotonic() - since[name] >= client.flush_interval
                if full or (idle and (hurry or old)):
                    pending[name] = []
                    del since[name]
                    try:
                        self.deliver(name, batch)
                    finally:
                        for _ in batch:
                            client._queue.task_done()
            # Asked afresh: a delivery may have taken seconds since `idle` was read, and the
            # events queued meanwhile must not be left behind by a stop
            if not pending[SEGMENT] and not pending[GAME] and client._queue.empty():
                self.wake.clear()
                if self.stopping:
                    if self.connection is not None:
                        self.connection.close()
                    return

    def deliver(self, kind: str, events: list[dict[str, Any]]) -> None:
        client = self.client
        stamp = "timestamp" if kind == SEGMENT else "ts"
        for event in events:
            if isinstance(event.get(stamp), float):
                event[stamp] = _iso(event[stamp])
        key = "batch" if kind == SEGMENT else "events"
        body: dict[str, Any] = {key: events}
        if kind == SEGMENT:
            body["sentAt"] = _now()
        raw = json.dumps(body, default=str).encode()
        if len(raw) > client.max_batch_bytes and len(events) > 1:
            half = len(events) // 2  # over the byte limit: send it as two
            self.deliver(kind, events[:half])
            self.deliver(kind, events[half:])
            return
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {client.write_key}",
            "User-Agent": "roost-python",
        }
        if client.gzip_bodies:
            raw = gzip.compress(raw, 5)
            headers["Content-Encoding"] = "gzip"
        attempt = 0
        while True:
            status, answer, retry_after, problem = self.post(
                client._base_path + PATHS[kind], raw, headers
            )
            if status is not None and 200 <= status < 300:
                self.settle(kind, events, answer)
                return
            if status is not None and status not in RETRY_STATUSES:
                client._report(Failure("rejected", f"HTTP {status}: {answer}", events, status))
                return
            attempt += 1
            if attempt > client.max_retries or self.abandon:
                client._report(
                    Failure(
                        "gave_up", f"after {attempt} tries: {problem or status}", events, status
                    )
                )
                return
            time.sleep(self.backoff(attempt, retry_after))

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.client.max_backoff)
        ceiling = min(self.client.max_backoff, 0.1 * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # full jitter on the upper half

    def settle(self, kind: str, events: list[dict[str, Any]], answer: Any) -> None:
        """Count what was stored; report the events a batch refused one by one."""
        client = self.client
        refused = answer.get("errors", []) if isinstance(answer, dict) else []
        bad = [e for e in refused if isinstance(e, dict) and isinstance(e.get("index"), int)]
        with client._lock:
            client.sent += len(events) - len(bad)
        for error in bad:
            client._report(
                Failure(
                    "rejected",
                    str(error.get("message", "refused")),
                    [events[error["index"]]],
                    200,
                )
            )

    def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, Any, float | None, str | None]:
        """(status, JSON answer, Retry-After seconds, network problem) of one POST."""
        client = self.client
        try:
            if self.connection is None:
                kind = (
                    http.client.HTTPSConnection
                    if client._scheme == "https"
                    else http.client.HTTPConnection
                )
                self.connection = kind(client._netloc, timeout=client.timeout)
            self.connection.request("POST", path, body, headers)
            response = self.connection.getresponse()
            text = response.read()
            retry = response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            return None, None, None, f"{type(exc).__name__}: {exc}"
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text.decode(errors="replace")
        seconds = None
        if retry:
            try:
                seconds = max(0.0, float(retry))
            except ValueError:
                seconds = None
        return response.status, answer, seconds, None
