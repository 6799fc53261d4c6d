"""A real HTTP server on loopback that receives webhook batches, and can be told to misbehave.

`script` holds the answers to give next, one per request: a status (with headers), or
"hang" to hold the request until `release()`. With the script empty it answers 200.
`stop()` and `start()` take it down and bring it back on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.integration.server import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    script: deque[tuple[int | str, dict[str, str]]] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status, headers = receiver.script.popleft() if receiver.script else (200, {})
                if status == "hang":
                    receiver._released.wait(30)
                    status = 200
                assert isinstance(status, int)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers), body, time.monotonic(), status)
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def release(self) -> None:
        self._released.set()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status < 300]

    def events(self) -> list[dict[str, Any]]:
        return [e for r in self.accepted() for e in r.json["batch"]]

    def wait_for(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        """The events accepted once there are `count` of them (or fewer, at the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.events()
