"""The HTTP server's own limits, where uvicorn has none: a request's head (request line and
headers) is bounded in size (431) and in time, its body in time (408), and the connections
one client address may hold at once; uvicorn closes idle keep-alive connections itself
(`keep_alive_seconds`). Roost faces browsers and game clients directly, so a client that
sends a huge header, or a header a byte a minute, or opens thousands of connections, must
cost it little and not for long.

It is uvicorn's httptools protocol with a few of its callbacks wrapped: the parser still
does all the parsing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from roost.config import Settings

LINGER_SECONDS = 2.0
SEND_BUFFER = "roost.send_buffer"  # the ASGI scope extension _limit_send_buffer is offered as


class GuardedProtocol(HttpToolsProtocol):
    max_head_bytes = 65536
    head_seconds = 10.0
    body_seconds = 30.0
    per_client = 256  # 0: no limit (behind a proxy every client is the proxy)
    _open: ClassVar[Counter[str]] = Counter()  # connections per client address, this process

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self._counted = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._head_bytes = 0
        self._in_head = True
        self._refused = False
        if self.per_client and self._open[self._address] >= self.per_client:
            self._refuse(429, f"this address has {self.per_client} connections open")
            return
        self._open[self._address] += 1
        self._counted = True
        self._arm(self.head_seconds)  # a connection that sends nothing goes too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self._uncount()
        super().connection_lost(exc)

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self._open[self._address] -= 1
            if self._open[self._address] <= 0:
                del self._open[self._address]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the answer is out: what else comes is dropped, not parsed
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes:
            self._refuse(431, f"the request line and headers must be at most "
                              f"{self.max_head_bytes} bytes")  # fmt: skip

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # how a long-lived answer (a debugger stream) asks for a small kernel send buffer
        self.scope["extensions"] = {SEND_BUFFER: {"limit": self._limit_send_buffer}}
        if not self._in_head:  # the next request on a kept-alive connection
            self._in_head = True
            self._head_bytes = 0
            self._arm(self.head_seconds)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.body_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _limit_send_buffer(self, size: int) -> None:
        """A client that stops reading a stream holds at most about `size` bytes of this
        connection in the kernel (Linux grows a send buffer to 4 MiB on its own), and the
        stream stops costing ingest anything once that is full."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    # One timer per connection at most, re-armed only when it fires early: a request sets a
    # deadline (a float), not a timer of its own (two timers a request cost the do-nothing
    # app ~7% of its requests/s).

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds
        if self._timer is None:
            self._timer = self.loop.call_later(seconds, self._check)

    def _disarm(self) -> None:
        self._deadline = None

    def _check(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        left = self._deadline - self.loop.time()
        if left > 0:
            self._timer = self.loop.call_later(left, self._check)
        else:
            self._too_slow()

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        part = "request line and headers" if self._in_head else "body"
        limit = self.head_seconds if self._in_head else self.body_seconds
        started = self.cycle is not None and self.cycle.response_started and not self._in_head
        if started:
            self.transport.close()
        else:
            self._refuse(408, f"the request's {part} did not arrive within {limit:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer and close, whatever the parser was in the middle of. The client may still
        be sending: closing at once would reset the connection and lose the answer, so what
        comes for a moment longer is left unread, and the connection closed after it (a
        lingering close)."""
        self._disarm()
        if self.transport.is_closing() or self._refused:
            return
        self._refused = True
        self._uncount()  # on its way out: it holds no place
        reasons = {408: "Request Timeout", 429: "Too Many Requests",
                   431: "Request Header Fields Too Large"}  # fmt: skip
        body = json.dumps({"error": {"code": reasons[status].lower().replace(" ", "_"),
                                     "message": message, "field": None}}).encode()  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reasons[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n"
            + ("retry-after: 5\r\n" if status == 429 else "")
            + "\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.pause_reading()  # what else comes waits in the kernel, unread
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def protocol(settings: Settings) -> type[GuardedProtocol]:
    """The protocol class with the settings' limits."""
    limits: dict[str, Any] = {
        "max_head_bytes": settings.max_header_bytes,
        "head_seconds": settings.header_timeout_seconds,
        "body_seconds": settings.body_timeout_seconds,
        "per_client": 0 if settings.trust_forwarded_for else settings.max_connections_per_client,
    }
    return type("RoostProtocol", (GuardedProtocol,), limits)


def config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for Roost's HTTP, the server's and an ingest process's alike."""
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        loop="auto",
        http=protocol(settings),
        proxy_headers=False,  # Roost reads them itself, as its settings say (web/peer.py)
        timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=10,
    )
