"""The cluster Log: a NATS JetStream stream, one message per event, its sequence the offset.

`append` publishes each event with `Nats-Msg-Id` = project and messageId, so JetStream drops
a retry another ingest node already stored (within the stream's duplicate window; Roost's
own dedup index and the Warehouse's key cover longer), and returns once JetStream has
acknowledged every event: stored by a quorum of the stream's replicas. Identify, alias and
group calls go to their own subject, so the profiles consumer reads only those.

Consumers read by sequence with JetStream's batched direct get (one request, thousands of
messages back), and keep their cursor beside what they do with the events (the Warehouse's
highest loaded offset, a forwarder's cursor in the metadata): a cursor kept in the same store
as the effect cannot disagree with it, which an acknowledgement to JetStream could. Retention
is the stream's own `max_age`; an erasure deletes the messages (overwriting them on disk),
leaving gaps in the sequence that readers step over.

nats-py is asyncio; the connection lives on a loop of its own, on a thread of its own, so the
server's loop and the consumers' threads can all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from roost import metrics
from roost.errors import BackendError, BadRequest
from roost.model import Event, LoggedEvent
from roost.storage.log import Group, logged_events
from roost.storage.log.sqlite import IDENTITY_TYPES

if TYPE_CHECKING:
    from roost.config import Settings

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Event).decode
log = logging.getLogger("roost.storage")
REQUEST_SECONDS = 10.0
STARTING_SECONDS = 60.0  # how long a starting JetStream cluster may take to answer
READ_BYTES = 8 * 1024 * 1024  # the most one batched read asks JetStream for
APPEND_SECONDS = 15.0  # how long an append keeps trying before the client is told 503
MAX_PENDING = 20_000  # publishes awaiting their acknowledgement, per connection


class StreamSettings(msgspec.Struct, frozen=True):
    servers: list[str]
    stream: str = "ROOST"
    replicas: int = 1
    max_age_hours: float = 168.0
    duplicate_window_seconds: float = 600.0


def parse_url(url: str, max_age_hours: float = 168.0) -> StreamSettings:
    """`nats://host:port[,host:port…][?stream=ROOST&replicas=3&duplicate_window=600]`."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    hosts = [h for h in parts.netloc.split(",") if h]
    if not hosts:
        raise BadRequest("log_url: a nats:// URL needs at least one host:port", field="log_url")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = {"stream", "replicas", "duplicate_window"}
    if set(query) - known:
        unknown = ", ".join(sorted(set(query) - known))
        raise BadRequest(f"log_url: unknown option {unknown} (known: stream, replicas, "
                         "duplicate_window)", field="log_url")  # fmt: skip
    try:
        replicas = int(query.get("replicas", "1"))
        window = float(query.get("duplicate_window", "600"))
    except ValueError as exc:
        raise BadRequest(f"log_url: {exc}", field="log_url") from None
    if not 1 <= replicas <= 5:
        raise BadRequest("log_url: replicas must be 1 to 5 (JetStream's limit)", field="log_url")
    return StreamSettings(
        servers=[f"nats://{h}" for h in hosts],
        stream=query.get("stream", "ROOST"),
        replicas=replicas,
        max_age_hours=max_age_hours,
        duplicate_window_seconds=window,
    )


class _LoopThread:
    """An asyncio loop on a daemon thread: coroutines from any thread run there."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run on the loop; an asyncio future of the caller's running loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = REQUEST_SECONDS * 2) -> T:
        """Run on the loop and wait (from a thread that is not the loop's)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


def _stored(msg: Msg) -> tuple[int, bytes] | None:
    """(sequence, data) of one message of a direct get; None for its end (a status)."""
    headers = msg.headers or {}
    if "Status" in headers or "Nats-Sequence" not in headers:
        return None
    return int(headers["Nats-Sequence"]), msg.data


def _groups(stored: list[tuple[int, bytes]]) -> list[Group]:
    """Messages in sequence order as groups of consecutive sequences, each a JSON array."""
    groups: list[Group] = []
    run: list[bytes] = []
    first = 0
    for seq, data in stored:
        if run and seq != first + len(run):
            groups.append(Group(first, len(run), b"[" + b",".join(run) + b"]"))
            run = []
        if not run:
            first = seq
        run.append(data)
    if run:
        groups.append(Group(first, len(run), b"[" + b",".join(run) + b"]"))
    return groups


async def _connection_error(exc: Exception) -> None:
    """One line per connection problem (a node down, a reconnect), not nats-py's traceback:
    the client goes on to the cluster's other servers by itself."""
    log.warning("NATS connection: %s", exc or type(exc).__name__)


class NatsLogReader:
    """The stream, read by sequence: what every consumer needs."""

    def __init__(self, url: str, *, max_age_hours: float = 168.0) -> None:
        self.settings = parse_url(url, max_age_hours)
        self.stream = self.settings.stream
        self.subject = self.stream.lower()
        self._loop = _LoopThread(f"roost-nats-{self.stream}")
        self._closed = False
        try:
            self._nc: Client = self._loop.call(self._connect())
            self._loop.call(self._ensure_stream(), timeout=STARTING_SECONDS + REQUEST_SECONDS * 2)
        except Exception as exc:
            if hasattr(self, "_nc"):  # connected, but the stream did not answer: hang up
                with contextlib.suppress(Exception):
                    self._loop.call(self._nc.close(), timeout=5)
            self._loop.stop()
            raise BackendError(f"NATS at {', '.join(self.settings.servers)}: {exc}") from exc
        self._js = self._nc.jetstream(
            timeout=REQUEST_SECONDS, publish_async_max_pending=MAX_PENDING
        )

    async def _connect(self) -> Client:
        return await nats.connect(
            servers=self.settings.servers,
            name="roost",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=_connection_error,
        )

    async def _ensure_stream(self) -> None:
        """The stream, made if missing. A JetStream cluster starting with Roost may not
        answer yet (no meta leader elected): asked again for up to STARTING_SECONDS."""
        js = self._nc.jetstream(timeout=REQUEST_SECONDS)
        deadline = time.monotonic() + STARTING_SECONDS
        while True:
            try:
                await js.stream_info(self.stream)
                return
            except NotFoundError:
                break
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        await js.add_stream(
            StreamConfig(
                name=self.stream,
                subjects=[f"{self.subject}.*"],
                storage=StorageType.FILE,
                num_replicas=self.settings.replicas,
                max_age=self.settings.max_age_hours * 3600,
                duplicate_window=self.settings.duplicate_window_seconds,
                discard=DiscardPolicy.OLD,
                allow_direct=True,
            )
        )

    def _subject(self, event: Event) -> str:
        return f"{self.subject}.{'identity' if event.type in IDENTITY_TYPES else 'event'}"

    # Reading

    def stream_info(self) -> StreamInfo:
        """The stream's configuration and state, as JetStream reports them."""
        return self._loop.call(self._js.stream_info(self.stream))

    def last_offset(self) -> int:
        return int(self.stream_info().state.last_seq)

    async def _direct(self, request: dict[str, Any]) -> list[tuple[int, bytes]]:
        """One batched direct get: the stored messages it answers, in sequence order."""
        found: list[tuple[int, bytes]] = []
        done = asyncio.get_running_loop().create_future()

        async def received(msg: Msg) -> None:
            item = _stored(msg)
            if item is None:
                if not done.done():
                    done.set_result(None)
            else:
                found.append(item)
                if len(found) >= request.get("batch", 1) and not done.done():
                    done.set_result(None)

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=received, pending_msgs_limit=-1)
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{self.stream}", _encode(request), reply=inbox
            )
            await asyncio.wait_for(done, REQUEST_SECONDS)
        except TimeoutError as exc:
            raise BackendError(f"NATS stream {self.stream}: a read timed out") from exc
        finally:
            await sub.unsubscribe()
        return found

    def read_groups(
        self, after_offset: int, limit: int, identities_only: bool = False
    ) -> list[Group]:
        """The events after `after_offset` (at most `limit`) as groups of consecutive ones."""
        request: dict[str, Any] = {
            "seq": after_offset + 1,
            "batch": max(1, limit),
            "max_bytes": READ_BYTES,
        }
        if identities_only:
            request["next_by_subj"] = f"{self.subject}.identity"
        return _groups(self._loop.call(self._direct(request)))

    def read_sync(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        return logged_events(self.read_groups(after_offset, limit), after_offset, limit)

    def offset_before(self, received_at: float) -> int:
        start = datetime.fromtimestamp(received_at, UTC).isoformat().replace("+00:00", "Z")
        found = self._loop.call(self._direct({"start_time": start, "batch": 1}))
        return found[0][0] - 1 if found else self.last_offset()

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # already gone: a reader has nothing to flush
            self._loop.call(self._nc.drain(), timeout=REQUEST_SECONDS)
        self._loop.stop()


class NatsLog(NatsLogReader):
    """The stream, written: an ingest node's Log."""

    def __init__(self, url: str, *, max_age_hours: float = 168.0) -> None:
        super().__init__(url, max_age_hours=max_age_hours)
        self._on_commit: Callable[[int, int, bytes], None] | None = None
        self._draining = False
        self._inflight = 0
        self._idle = threading.Condition()

    def subscribe(self, on_commit: Callable[[int, int, bytes], None]) -> None:
        self._on_commit = on_commit

    def append(self, events: Sequence[Event]) -> asyncio.Future[list[int]]:
        if self._draining:
            future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
            future.set_exception(BackendError("the event store is shutting down"))
            return future
        with self._idle:
            self._inflight += 1
        return self._loop.submit(self._publish(list(events)))

    async def _publish(self, events: list[Event]) -> list[int]:
        started = time.perf_counter()
        try:
            bodies = [_encode(e) for e in events]
            offsets = await self._publish_all(events, bodies)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()
        metrics.LOG_COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.LOG_BATCH_EVENTS.observe(len(events))
        if self._on_commit is not None:
            fresh = sorted(zip(offsets, bodies, strict=True))
            for first, count, blob in _groups(_unique(fresh)):
                self._on_commit(first, count, blob)
        return offsets

    async def _publish_all(self, events: list[Event], bodies: list[bytes]) -> list[int]:
        """Publish until every event is acknowledged, or raise BackendError at the deadline.

        An event whose acknowledgement did not come (a new stream leader being elected, a
        reconnect) is published again with the same `Nats-Msg-Id`: if the first copy was
        stored, JetStream answers with its sequence instead of storing it twice.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + APPEND_SECONDS
        offsets = [0] * len(events)
        todo = list(range(len(events)))
        while True:
            error: BaseException | None = None
            acks: dict[asyncio.Future[Any], int] = {}
            try:
                # nats-py waits for a free publish slot through asyncio.wait_for, which makes a
                # task per message when given a timeout: give one only when slots run short
                room = MAX_PENDING - self._js.publish_async_pending() > len(todo)
                for i in todo:
                    e = events[i]
                    ack = await self._js.publish_async(
                        self._subject(e),
                        bodies[i],
                        headers={"Nats-Msg-Id": f"{e.project_id}/{e.message_id}"},
                        wait_stall=None if room else max(0.1, deadline - loop.time()),
                    )
                    acks[ack] = i
            except Exception as exc:  # not connected, too many pending: retried below
                error = exc
            if acks:
                wait = min(REQUEST_SECONDS, max(0.1, deadline - loop.time()))
                await asyncio.wait(acks, timeout=wait)
            failed = set(todo) - set(acks.values())
            for ack, i in acks.items():
                if not ack.done():
                    ack.cancel()  # frees its slot among the pending publishes
                    failed.add(i)
                elif ack.cancelled() or ack.exception() is not None:
                    error = ack.exception() if not ack.cancelled() else error
                    failed.add(i)
                else:
                    offsets[i] = int(ack.result().seq)
            if not failed:
                return offsets
            if loop.time() >= deadline:
                why = error or "no acknowledgement in time"
                raise BackendError(f"the event store could not commit: {why}")
            metrics.LOG_PUBLISH_RETRIES.inc(len(failed))
            todo = sorted(failed)
            await asyncio.sleep(0.2)

    async def read(self, after_offset: int, limit: int) -> list[LoggedEvent]:
        return await asyncio.to_thread(self.read_sync, after_offset, limit)

    def checkpoint(self) -> None:
        """Nothing to do: JetStream keeps its own files."""

    def scrub(self) -> bool:
        """Nothing left to do: a deleted message is overwritten where it was stored."""
        return True

    def trim(self, received_before: float, loaded_up_to: int) -> int:
        """Nothing to do: the stream's `max_age` retires old events."""
        return 0

    def erase(
        self, project_id: int, matches: Callable[[Event], bool], hints: Sequence[str] = ()
    ) -> list[str]:
        """Delete the project's matching events from the stream (overwritten on disk, so
        `scrub` has nothing left to do); their messageIds.

        Reads the whole stream; `hints` (ids) skip messages that hold none of them unparsed.
        """
        needles = [_encode(h) for h in hints]
        erased: list[str] = []
        after = 0
        while True:
            stored = self._loop.call(
                self._direct({"seq": after + 1, "batch": 10_000, "max_bytes": READ_BYTES})
            )
            if not stored:
                return erased
            for seq, data in stored:
                if needles and not any(n in data for n in needles):
                    continue
                event = _decode(data)
                if event.project_id == project_id and matches(event):
                    self._loop.call(self._js.delete_msg(self.stream, seq))
                    erased.append(event.message_id)
            after = stored[-1][0]

    def drain(self) -> None:
        """Wait for the appends under way and take no more."""
        self._draining = True
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=REQUEST_SECONDS * 2)

    def close_sync(self) -> None:
        self.drain()
        super().close_sync()

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)


def _unique(stored: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """One message per sequence (an append that repeats a messageId gets one sequence twice)."""
    out: list[tuple[int, bytes]] = []
    for seq, data in stored:
        if not out or out[-1][0] != seq:
            out.append((seq, data))
    return out


def open_log(url: str, settings: Settings) -> NatsLog:
    return NatsLog(url, max_age_hours=settings.log_retention_hours)


def open_reader(url: str, settings: Settings) -> NatsLogReader:
    return NatsLogReader(url, max_age_hours=settings.log_retention_hours)
