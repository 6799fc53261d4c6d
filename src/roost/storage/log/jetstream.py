"""The cluster Log: a NATS JetStream stream, one message per append (a request's events).

Each append's events are one message (split at SPAN events or MESSAGE_BYTES), a JSON array, so
JetStream's and nats-py's cost is per request, not per event; identify, alias and group calls
are one message each on a subject of their own, so the profiles consumer reads only those and
an erasure never has to store one again. A message's sequence gives its events' offsets
(`first_offset`): they increase in append order but are not dense, so a lag is counted with
`count_between`, never by subtraction.

`append` publishes with `Nats-Msg-Id` made from the project and messageIds of the message's
events, so JetStream drops a retry of the same request that another ingest node already
stored (within the stream's duplicate window; Roost's own dedup index and the Warehouse's key
cover longer), and returns once JetStream has acknowledged every message: stored by a quorum
of the stream's replicas.

Consumers read by sequence with JetStream's batched direct get (one request, thousands of
messages back), and keep their cursor beside what they do with the events (the Warehouse's
highest loaded offset, a forwarder's cursor in the metadata): a cursor kept in the same store
as the effect cannot disagree with it, which an acknowledgement to JetStream could. Retention
is the stream's own `max_age`. JetStream cannot rewrite a message: an erasure deletes each
message holding an erased event (overwriting it on disk) and stores its other events again as
a new message (`Erased.replaced` tells the Warehouse to drop its rows of the old offsets);
readers step over the gaps.

nats-py is asyncio; the connection lives on a loop of its own, on a thread of its own, so the
server's loop and the consumers' threads can all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
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
from roost.storage.log import Erased, Group, logged_events
from roost.storage.log.sqlite import IDENTITY_TYPES

if TYPE_CHECKING:
    from roost.config import Settings

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[Event]).decode
log = logging.getLogger("roost.storage")
REQUEST_SECONDS = 10.0
STARTING_SECONDS = 60.0  # how long a starting JetStream cluster may take to answer
READ_BYTES = 8 * 1024 * 1024  # the most one batched read asks JetStream for
APPEND_SECONDS = 15.0  # how long an append keeps trying before the client is told 503
MAX_PENDING = 20_000  # publishes awaiting their acknowledgement, per connection
SPAN = 4096  # offsets one message spans: the most events it holds
MESSAGE_BYTES = 768 * 1024  # a message's most, under nats-server's default max_payload (1 MiB)
COUNT_BYTES = 1024 * 1024  # what `count_between` reads before it estimates the rest
EVENTS = "Roost-Events"  # header: how many events the message holds


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


def first_offset(sequence: int, count: int) -> int:
    """The offset of the first of a message's `count` events: each message ends its span, so
    its last event is at sequence × SPAN + SPAN − 1 and the message after an offset is the
    one at (offset + 1) // SPAN. An empty message (count 0) only moves cursors past it."""
    return sequence * SPAN + SPAN - count


def _sequence_after(offset: int) -> int:
    return max(1, (offset + 1) // SPAN)


class Stored(NamedTuple):
    sequence: int
    size: int  # how many events
    events: bytes  # a JSON array


def _stored(msg: Msg) -> Stored | None:
    """One message of a direct get; None for its end (a status)."""
    headers = msg.headers or {}
    if "Status" in headers or "Nats-Sequence" not in headers:
        return None
    data = msg.data
    if data[:1] != b"[":  # one event, as Roost stored each event before grouping
        return Stored(int(headers["Nats-Sequence"]), 1, b"[" + data + b"]")
    count = int(headers[EVENTS]) if EVENTS in headers else len(_decode(data))
    return Stored(int(headers["Nats-Sequence"]), count, data)


def _groups(stored: list[Stored]) -> list[Group]:
    return [Group(first_offset(s.sequence, s.size), s.size, s.events) for s in stored]


class Outgoing(NamedTuple):
    """A message to publish, and which of the append's events it holds."""

    subject: str
    events: bytes  # a JSON array
    headers: dict[str, str]
    indices: list[int]


def _message_id(events: Sequence[Event]) -> str:
    """The same events give the same id, whichever node publishes them: a client's retry of a
    request another node stored is dropped by JetStream. One event keeps its plain id."""
    if len(events) == 1:
        return f"{events[0].project_id}/{events[0].message_id}"
    ids = "\n".join(f"{e.project_id}/{e.message_id}" for e in events)
    return "g:" + hashlib.blake2b(ids.encode(), digest_size=16).hexdigest()


def _outgoing(subject: str, events: Sequence[Event], bodies: list[bytes]) -> list[Outgoing]:
    """The messages of one append, in its order: identity calls one each, the events between
    them together, split at SPAN events or MESSAGE_BYTES."""
    messages: list[Outgoing] = []
    run: list[int] = []
    size = 0

    def close(indices: list[int], topic: str) -> None:
        body = b"[" + b",".join(bodies[i] for i in indices) + b"]"
        headers = {"Nats-Msg-Id": _message_id([events[i] for i in indices]),
                   EVENTS: str(len(indices))}  # fmt: skip
        messages.append(Outgoing(topic, body, headers, indices))

    for i, event in enumerate(events):
        if event.type in IDENTITY_TYPES:  # in its place: offsets follow the append's order
            if run:
                close(run, f"{subject}.event")
                run, size = [], 0
            close([i], f"{subject}.identity")
            continue
        if run and (len(run) >= SPAN or size + len(bodies[i]) > MESSAGE_BYTES):
            close(run, f"{subject}.event")
            run, size = [], 0
        run.append(i)
        size += len(bodies[i]) + 1
    if run:
        close(run, f"{subject}.event")
    return messages


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

    # Reading

    def stream_info(self) -> StreamInfo:
        """The stream's configuration and state, as JetStream reports them; a BackendError
        while the cluster cannot answer (a node killed, a leader being elected), so a
        consumer pauses and tries again rather than failing with a traceback."""
        try:
            return self._loop.call(self._js.stream_info(self.stream))
        except (TimeoutError, nats.errors.Error) as exc:
            raise BackendError(f"NATS stream {self.stream}: {type(exc).__name__}: {exc}") from exc

    def last_offset(self) -> int:
        last = int(self.stream_info().state.last_seq)
        return first_offset(last, 1) if last else 0

    async def _direct(self, request: dict[str, Any]) -> list[Stored]:
        """One batched direct get: the stored messages it answers, in sequence order."""
        found: list[Stored] = []
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
            "seq": _sequence_after(after_offset),
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
        return found[0].sequence * SPAN - 1 if found else self.last_offset()

    def count_between(self, after_offset: int, up_to: int) -> int:
        """Counted from the messages themselves, reading at most COUNT_BYTES of them; past
        that, the messages not read are taken at the average size of those read."""
        start, end = _sequence_after(after_offset), up_to // SPAN
        if up_to <= after_offset or end < start:
            return 0
        request = {"seq": start, "batch": min(end - start + 1, 10_000), "max_bytes": COUNT_BYTES}
        found = self._loop.call(self._direct(request))
        stored = [s for s in found if s.sequence <= end]
        counted = 0
        for s in stored:
            first = first_offset(s.sequence, s.size)
            counted += max(0, min(up_to, first + s.size - 1) - max(after_offset, first - 1))
        read = sum(len(s.events) for s in found)
        cut = len(found) == request["batch"] or (
            bool(found) and read + read / len(found) > COUNT_BYTES
        )
        if stored and stored[-1].sequence < end and cut:  # not a gap at the end: a limit
            unread = end - stored[-1].sequence
            counted += round(unread * sum(s.size for s in stored) / len(stored))
        return counted

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
            messages = _outgoing(self.subject, events, [_encode(e) for e in events])
            sequences = await self._publish_all(messages)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()
        metrics.LOG_COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.LOG_BATCH_EVENTS.observe(len(events))
        offsets = [0] * len(events)
        committed: dict[int, Group] = {}
        for message, sequence in zip(messages, sequences, strict=True):
            first = first_offset(sequence, len(message.indices))
            for j, i in enumerate(message.indices):
                offsets[i] = first + j
            committed[sequence] = Group(first, len(message.indices), message.events)
        if self._on_commit is not None:  # a retry JetStream dropped repeats a sequence
            for sequence in sorted(committed):
                self._on_commit(*committed[sequence])
        return offsets

    async def _publish_all(self, messages: list[Outgoing]) -> list[int]:
        """Publish until every message is acknowledged, or raise BackendError at the deadline;
        their sequences.

        A message whose acknowledgement did not come (a new stream leader being elected, a
        reconnect) is published again with the same `Nats-Msg-Id`: if the first copy was
        stored, JetStream answers with its sequence instead of storing it twice.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + APPEND_SECONDS
        sequences = [0] * len(messages)
        todo = list(range(len(messages)))
        while True:
            error: BaseException | None = None
            acks: dict[asyncio.Future[Any], int] = {}
            try:
                # nats-py waits for a free publish slot through asyncio.wait_for, which makes a
                # task per message when given a timeout: give one only when slots run short
                room = MAX_PENDING - self._js.publish_async_pending() > len(todo)
                for i in todo:
                    ack = await self._js.publish_async(
                        messages[i].subject,
                        messages[i].events,
                        headers=messages[i].headers,
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
                    sequences[i] = int(ack.result().seq)
            if not failed:
                return sequences
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
    ) -> Erased:
        """Delete each message holding a matching event of the project (overwritten on disk,
        so `scrub` has nothing left to do), its other events first stored again as a new
        message; then an empty message, so that the stream never ends on a gap a consumer
        could not step past.

        Reads the whole stream; `hints` (ids) skip messages that hold none of them unparsed.
        """
        needles = [_encode(h) for h in hints]
        erased: list[str] = []
        replaced: list[tuple[int, int]] = []
        after = 0
        while stored := self._loop.call(
            self._direct({"seq": after + 1, "batch": 1000, "max_bytes": READ_BYTES})
        ):
            for message in stored:
                if not message.size or (needles and not any(n in message.events for n in needles)):
                    continue
                events = _decode(message.events)
                hit = [e.project_id == project_id and matches(e) for e in events]
                if not any(hit):
                    continue
                rest = [e for e, gone in zip(events, hit, strict=True) if not gone]
                if rest:
                    bodies = [_encode(e) for e in rest]
                    again = _outgoing(self.subject, rest, bodies)
                    for m in again:  # not the first copy's id: JetStream would drop it
                        m.headers["Nats-Msg-Id"] += f"/after-{message.sequence}"
                    self._loop.call(self._publish_all(again), timeout=APPEND_SECONDS * 2)
                    first = first_offset(message.sequence, message.size)
                    replaced.append((first, first + message.size - 1))
                self._loop.call(self._js.delete_msg(self.stream, message.sequence))
                erased += [e.message_id for e, gone in zip(events, hit, strict=True) if gone]
            after = stored[-1].sequence
        if erased:
            end = Outgoing(f"{self.subject}.event", b"[]",
                           {"Nats-Msg-Id": f"erased-after-{after}", EVENTS: "0"}, [])  # fmt: skip
            self._loop.call(self._publish_all([end]), timeout=APPEND_SECONDS * 2)
        return Erased(erased, replaced)

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


def open_log(url: str, settings: Settings) -> NatsLog:
    return NatsLog(url, max_age_hours=settings.log_retention_hours)


def open_reader(url: str, settings: Settings) -> NatsLogReader:
    return NatsLogReader(url, max_age_hours=settings.log_retention_hours)
