"""The server's own limits on what a client may hold: a head too large (431) or too slow
(408), a body too slow, an idle connection, too many connections from one address — each
answered and closed, while the server keeps answering everyone else."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import Server, create_key

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


def visitors(server: Server, read: str) -> list[str]:
    """The stored events' visitors, in the order they were sent (waiting for the load)."""
    for _ in range(100):
        rows = httpx.post(
            f"{server.url}/api/v1/sql",
            json={"sql": "SELECT visitor FROM events ORDER BY log_offset"},
            headers={"Authorization": f"Bearer {read}"},
        ).json()["rows"]
        if len(rows) == 3:
            return [row[0] for row in rows]
        time.sleep(0.1)
    raise AssertionError("the events were not stored")


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_is_believed_only_when_trusted(tmp_path: Path, trusted: bool) -> None:
    """X-Forwarded-For names the client only with trust_forwarded_for, and then by its first
    address — from a loopback peer too (uvicorn believes one from 127.0.0.1 on its own)."""
    data = tmp_path / "data"
    server = Server(data, trust_forwarded_for=str(trusted).lower()).start()
    try:
        write, read = create_key(data, "write"), create_key(data, "read")
        for forwarded in ("1.2.3.4, 9.9.9.9", "5.6.7.8", "1.2.3.4, 7.7.7.7"):
            sent = httpx.post(
                f"{server.url}/v1/track",
                json={"event": "Opened", "anonymousId": "a", "context": {"userAgent": "ua"}},
                headers={"Authorization": f"Bearer {write}", "X-Forwarded-For": forwarded},
            )
            assert sent.status_code == 200, sent.text
        first, second, third = visitors(server, read)
        if trusted:  # by the first address: two clients
            assert first == third != second
        else:  # the peer's address: one client
            assert first == second == third
        # a local proxy's X-Forwarded-Proto still says how the client came (the dashboard's
        # Secure cookies, analytics.js's settings)
        settings = httpx.get(
            f"{server.url}/v1/projects/{write}/settings", headers={"X-Forwarded-Proto": "https"}
        ).json()
        assert settings["integrations"]["Segment.io"]["protocol"] == "https"
        plain = httpx.get(f"{server.url}/v1/projects/{write}/settings").json()
        assert plain["integrations"]["Segment.io"]["protocol"] == "http"
    finally:
        server.stop()
