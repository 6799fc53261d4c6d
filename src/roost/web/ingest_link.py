"""The link between an ingest process (web/ingest_process.py) and the server.

With `ingest_processes` above 1, other processes accept connections on the server's port
beside it, read each ingest request and let its dialect find its events. Everything that is
state stays in the server: the keys, the pipeline (dedup, limits, budgets, drift), the Log,
the metrics, the debugger and the refusals, so a retry that lands on another process is
still a duplicate and a limit is still one limit. Over this link, a Unix socket of the
server's, an ingest process sends what it read (`Asked`: the events, or why the request is
refused whole) and gets the answer (`Answered`) once the events are in the Log: nothing is
acknowledged that the server has not stored. A frame is a 4-byte length and JSON (the
events' own form: any JSON number or text goes through unchanged).

Ingest held back (consumers/backlog.py) holds an ingest process's request in the server, in
the same wait as the server's own: a request read elsewhere is not passed over when the
Warehouse catches up. Its body is read by then (held in the ingest process), which a request
the server reads itself is not.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from roost import metrics
from roost.dialects.base import IngestRequest, Parsed, Reply
from roost.errors import BackendError, ClientError, RoostError
from roost.web.intake import DIALECTS, Read

log = logging.getLogger("roost.ingest")
HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30  # a frame is one request's events: far below this, whatever the limits


class Problem(msgspec.Struct, array_like=True):
    """A ClientError that refuses a request whole, as the ingest process met it."""

    status: int
    code: str
    message: str
    field: str | None
    retry_after: int | None = None

    @classmethod
    def of(cls, error: ClientError) -> Problem:
        return cls(error.status, error.code, error.message, error.field,
                   getattr(error, "retry_after", None))  # fmt: skip

    def error(self) -> ClientError:
        error = ClientError(self.message, field=self.field, code=self.code)
        error.status = self.status
        if self.retry_after is not None:
            error.retry_after = self.retry_after  # type: ignore[attr-defined]
        return error


class Asked(msgspec.Struct, array_like=True, tag="asked"):
    id: int
    dialect: str
    spent: float  # seconds the ingest process took to read it
    origin: str | None = None  # the Origin header: a key-less tracker's site is checked by it
    client_ip: str | None = None
    received_at: datetime | None = None
    parsed: Parsed | None = None
    problem: Problem | None = None

    def read(self) -> Read:
        chosen = DIALECTS[self.dialect]
        if self.problem is not None or self.parsed is None or self.received_at is None:
            problem = self.problem or Problem(400, "invalid_request", "unreadable request", None)
            return Read(chosen, None, None, problem.error())
        headers = {"origin": self.origin} if self.origin is not None else {}
        request = IngestRequest("", headers, b"", self.client_ip, self.received_at)
        return Read(chosen, request, self.parsed, None)


class Answered(msgspec.Struct, array_like=True, tag="answered"):
    id: int
    status: int
    body: msgspec.Raw  # the answer's JSON, as the server encoded it
    headers: list[tuple[str, str]]


Frame = Asked | Answered
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Frame).decode


def frame(message: Frame) -> bytes:
    data = _encode(message)
    return HEADER.pack(len(data)) + data


class Frames(asyncio.Protocol):
    """Length-prefixed frames in, each handed to `on_frame`; `on_lost` when the peer goes."""

    def __init__(self, on_frame: Callable[[Frame], None], on_lost: Callable[[], None]) -> None:
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            (size,) = HEADER.unpack_from(buffer, start)
            if size > MAX_FRAME:
                log.error("ingest link: a frame of %d bytes; closing the link", size)
                assert self.transport is not None
                self.transport.close()
                return
            if len(buffer) - start - 4 < size:
                break
            message = _decode(bytes(buffer[start + 4 : start + 4 + size]))  # a Raw keeps it
            start += 4 + size
            self.on_frame(message)
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost()

    def send(self, message: Frame) -> bool:
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(frame(message))
        return True


# The server's side


class LinkServer:
    """Takes ingest processes' requests on a Unix socket and answers each once it is stored."""

    def __init__(self, answer: Callable[[Read, float], Any]) -> None:
        """`answer(read, started)`: web/ingest.py's, held back as the server's own requests."""
        self._answer = answer
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(self._connection, path)

    def _connection(self) -> Frames:
        link: Frames

        def on_frame(message: Frame) -> None:
            if isinstance(message, Asked):
                task = asyncio.ensure_future(self._serve(link, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        link = Frames(on_frame, lambda: None)
        return link

    async def _serve(self, link: Frames, asked: Asked) -> None:
        metrics.INGEST_LINK_REQUESTS.inc()
        started = time.perf_counter() - asked.spent
        read = asked.read()
        try:
            reply: Reply = await self._answer(read, started)
        except Exception:  # a bug: answered as uvicorn answers one in the server's own requests
            log.exception("ingest failed")
            reply = read.chosen.refuse(RoostError("the server failed; send the events again"), 1)
        headers = [(k, str(v)) for k, v in reply.headers.items()]
        body = msgspec.Raw(_encode(reply.body))
        # a link gone meanwhile drops the answer: the events were stored all the same
        link.send(Answered(asked.id, reply.status, body, headers))

    async def close(self) -> None:
        """Stop taking connections; what was asked is answered first."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


# An ingest process's side


class LinkDown(BackendError):
    """The server is gone or going: nothing sent over the link can be known stored."""


class LinkClient:
    def __init__(self, on_lost: Callable[[], None] = lambda: None) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Answered]] = {}
        self._link: Frames | None = None
        self._on_lost = on_lost

    async def connect(self, path: str, timeout: float) -> None:
        """Connect, trying again until the server listens (it opens its stores first)."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, link = await loop.create_unix_connection(
                    lambda: Frames(self._answered, self._lost), path
                )
                self._link = link
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def ask(self, asked: Asked) -> Answered:
        asked.id = next(self._ids)
        future: asyncio.Future[Answered] = asyncio.get_running_loop().create_future()
        if self._link is None or not self._link.send(asked):
            raise LinkDown("the server is not taking events now; send them again")
        self._waiting[asked.id] = future
        try:
            return await future
        finally:
            self._waiting.pop(asked.id, None)

    def _answered(self, message: Frame) -> None:
        if isinstance(message, Answered):
            future = self._waiting.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)

    def _lost(self) -> None:
        self._link = None
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(LinkDown("the server went away; send the events again"))
        self._on_lost()

    def close(self) -> None:
        if self._link is not None and self._link.transport is not None:
            self._link.transport.close()
