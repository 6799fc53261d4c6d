"""Every route but ingest, from an ingest process to the server that holds the Warehouse.

The connections an ingest process accepts are the server's too (they share its listening
socket), so whatever else comes on them — queries, the dashboard, the debugger's stream —
goes on to the server over a Unix socket of its own, streamed both ways. The client's address
goes with it in `x-roost-peer`, which the server believes only from that socket (`arrived`),
so per-address limits and logins see the client, not the ingest process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

from roost.web.body import Receive
from roost.web.serving import SEND_BUFFER

STREAM_SEND_BUFFER = 65536  # as the debugger's stream asks of its own connection

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
PEER = b"x-roost-peer"
# hop-by-hop headers (RFC 9110 7.6.1): they are about one connection, not the request
HOP = frozenset((b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
                 b"te", b"trailer", b"transfer-encoding", b"upgrade", PEER))  # fmt: skip


def arrived(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope of a request an ingest process passed on, with the client it came from; any
    other scope as it is. Only a Unix socket's request (no port to the server's address)
    carries it: `x-roost-peer` from a network client is ignored."""
    server = scope.get("server")
    if scope.get("client") is not None or not server or server[1] is not None:
        return scope
    for name, value in scope["headers"]:
        if name == PEER:
            host, _, port = value.decode("latin-1").rpartition(" ")
            return {**scope, "client": (host, int(port) if port.isdigit() else 0)}
    return scope


class Proxy:
    def __init__(self, uds: str) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=uds),
            timeout=httpx.Timeout(None, connect=10.0),  # the server bounds its own answers
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        )

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP]
        client = scope.get("client")
        if client:
            headers.append((PEER, f"{client[0]} {client[1]}".encode("latin-1")))
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        if query := scope.get("query_string", b""):
            raw += b"?" + query
        url = httpx.URL("http://roost").copy_with(raw_path=raw)
        done = asyncio.Event()  # the request's body is all read: a disconnect may be watched

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionResetError("the client went away")
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    done.set()
                    return

        request = self.client.build_request(scope["method"], url, headers=headers,
                                            content=body())  # fmt: skip
        try:
            response = await self.client.send(request, stream=True)
        except (httpx.HTTPError, ConnectionResetError):
            await _unavailable(send)
            return
        try:
            await send({
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in HOP],
            })  # fmt: skip
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                # a reader that stops holds what it held at the server (web/api/debugger.py)
                send_buffer = scope.get("extensions", {}).get(SEND_BUFFER)
                if send_buffer:
                    send_buffer["limit"](STREAM_SEND_BUFFER)
            streaming = asyncio.ensure_future(_stream(response, send))
            gone = asyncio.ensure_future(_disconnected(receive, done))
            await asyncio.wait((streaming, gone), return_when=asyncio.FIRST_COMPLETED)
            for task in (streaming, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError, OSError):
                    await task
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.client.aclose()


async def _stream(response: httpx.Response, send: Send) -> None:
    async for chunk in response.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive, done: asyncio.Event) -> None:
    """Returns when the client goes away (a stream it stopped reading ends then)."""
    await done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unavailable(send: Send) -> None:
    body = b'{"error":"the server is not answering now; try again","code":"unavailable"}'
    await send({
        "type": "http.response.start", "status": 503,
        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
