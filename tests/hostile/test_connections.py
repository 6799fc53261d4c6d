"""The server's own limits on what a client may hold: a head too large (431) or too slow
(408), a body too slow, an idle connection, too many connections from one address — each
answered and closed, while the server keeps answering everyone else."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import Server

pytestmark = pytest.mark.slow


OPENED: list[socket.socket] = []


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    OPENED.append(sock)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (b"" if it just closes)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_heads_bodies_idlers_and_crowds_are_bounded(tmp_path: Path) -> None:
    server = Server(
        tmp_path / "data", header_timeout_seconds="1", body_timeout_seconds="1",
        max_connections_per_client="20",
    ).start()  # fmt: skip
    try:
        big = connect(server)
        big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20))
        reply = answer(big)
        assert reply.startswith(b"HTTP/1.1 431"), reply[:100]

        slow = connect(server)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and no more
        started = time.monotonic()
        assert answer(slow).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 5

        idle = connect(server)  # sends nothing at all
        assert answer(idle).startswith(b"HTTP/1.1 408")

        partial = connect(server)
        partial.sendall(
            b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"event":'
        )
        assert answer(partial).startswith(b"HTTP/1.1 408")

        held = [connect(server) for _ in range(20)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        crowd = connect(server)
        assert answer(crowd).startswith(b"HTTP/1.1 429")
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # room again
    finally:
        for sock in OPENED:
            sock.close()
        server.stop()
