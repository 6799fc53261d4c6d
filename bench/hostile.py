"""Single-event ingest latency with and without hostile load on the same server.

    python bench/hostile.py [--requests 3000] [--record]

The hostile load, all at once: idle connections, connections sending their headers a byte
at a time, 1 MB headers, big SQL answers, and debugger streams that never read. Ingest is
measured the same way both times (one keep-alive client, one event per request, in
sequence); the figure to watch is p99 under load against p99 without (issue 15: within 2x).
Every client is on loopback, so the per-address connection limit is raised for the run (one
address here stands for many attackers); the other limits are the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from roost.devtools.servers import free_port
from run import new_key, publish, wait_ready

IDLE, SLOW, STREAMS, SQL_THREADS = 200, 50, 100, 2


def latencies(url: str, key: str, n: int) -> list[float]:
    out = []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for i in range(n):
            started = time.perf_counter()
            answer = client.post(
                f"{url}/v1/track",
                json={"userId": "bench", "event": "Timed", "properties": {"i": i}},
            )
            out.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
    return out


class Hostile:
    """The hostile load, each kind in threads of its own until `stop`."""

    def __init__(self, port: int, read_keys: list[str], only: str = "") -> None:
        self.port, self.read_keys, self.only = port, read_keys, only
        self.stopping = threading.Event()
        self.counts: dict[str, int] = {"431": 0, "408 or closed": 0, "sql truncated": 0}
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sockets.append(sock)
        return sock

    def _idle(self) -> None:
        while not self.stopping.is_set():
            try:
                sock = self._connect()
                sock.recv(1024)  # until the server closes it
                self.counts["408 or closed"] += 1
            except OSError:
                time.sleep(0.1)

    def _slow(self) -> None:
        while not self.stopping.is_set():
            try:
                sock = self._connect()
                for byte in b"POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                    if self.stopping.is_set():
                        return
                    sock.send(bytes([byte]))
                    time.sleep(0.2)
            except OSError:
                self.counts["408 or closed"] += 1

    def _huge(self) -> None:
        while not self.stopping.is_set():
            try:
                sock = self._connect()
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20))
                if sock.recv(64).startswith(b"HTTP/1.1 431"):
                    self.counts["431"] += 1
                sock.close()
            except OSError:
                pass

    def _sql(self) -> None:
        sql = "select repeat('x', 100000) as s from range(1000)"
        with httpx.Client(timeout=60) as client:
            while not self.stopping.is_set():
                answer = client.post(
                    f"http://127.0.0.1:{self.port}/api/v1/sql", json={"sql": sql},
                    headers={"Authorization": f"Bearer {self.read_keys[0]}"},
                )  # fmt: skip
                if answer.status_code == 200 and answer.json()["truncated"]:
                    self.counts["sql truncated"] += 1

    def _streams(self) -> None:
        for i in range(STREAMS):  # never read: their queues fill, they lose their entries
            sock = self._connect()
            key = self.read_keys[i // 5]
            sock.sendall(
                f"GET /api/v1/debugger/stream HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {key}\r\n\r\n".encode()
            )

    def start(self) -> None:
        kinds = [*[self._idle] * IDLE, *[self._slow] * SLOW, self._huge,
                 *[self._sql] * SQL_THREADS, self._streams]  # fmt: skip
        if self.only:
            kinds = [k for k in kinds if k.__name__[1:] in self.only.split(",")]
        for kind in kinds:
            thread = threading.Thread(target=kind, daemon=True)
            thread.start()
            self.threads.append(thread)
        time.sleep(3)  # everyone connected

    def stop(self) -> None:
        self.stopping.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def attack(port: int, reads: list[str], stop: Any, counts: Any, only: str, nice: int) -> None:
    os.nice(nice)  # with --nice: the generator yields the cores, as if it ran elsewhere
    hostile = Hostile(port, reads, only)
    hostile.start()
    stop.wait()
    hostile.stop()
    counts.update(hostile.counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--only",
        default="",
        help="these kinds only, comma-separated: idle, slow, huge, sql, streams",
    )
    parser.add_argument("--nice", type=int, default=0, help="niceness of the load generator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        env = {**os.environ, "ROOST_LOG_LEVEL": "warning", "ROOST_MAX_CONNECTIONS_PER_CLIENT": "5000",
               "ROOST_METRICS_LISTEN": ""}  # fmt: skip
        import subprocess

        server = subprocess.Popen(
            [sys.executable, "-m", "roost", "serve", "--data", str(data), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, "/readyz")
            write = new_key(data, "write")
            reads = [new_key(data, "read") for _ in range(STREAMS // 5)]
            latencies(url, write, 300)  # warm up
            quiet = latencies(url, write, args.requests)
            # the load in a process of its own, so its threads do not share this one's GIL
            counts: Any = multiprocessing.Manager().dict()
            stop = multiprocessing.Event()
            attacker = multiprocessing.Process(
                target=attack, args=(port, reads, stop, counts, args.only, args.nice)
            )
            attacker.start()
            time.sleep(4)  # everyone connected
            loaded = latencies(url, write, args.requests)
            stop.set()
            attacker.join(30)
            figures: dict[str, Any] = {"quiet": quiet, "loaded": loaded, "counts": dict(counts)}
        finally:
            server.terminate()
            server.wait(30)
    publish(render(args, figures), record=args.record)


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def render(args: argparse.Namespace, figures: dict[str, Any]) -> str:
    q50, q99 = quantiles(figures["quiet"])
    l50, l99 = quantiles(figures["loaded"])
    return f"""
## Ingest under hostile load ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)

`python bench/hostile.py --requests {args.requests}{f" --nice {args.nice}" if args.nice else ""}{f" --only {args.only}" if args.only else ""}` on {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}. Single-event `POST /v1/track`, one keep-alive client, in
sequence; the hostile load at once: {IDLE} idle connections, {SLOW} sending headers a byte
every 0.2 s, 1 MB headers in a loop, {SQL_THREADS} clients asking for a 100 MB SQL answer in a
loop, {STREAMS} debugger streams that never read.

| | p50 ms | p99 ms |
|---|---|---|
| quiet | {q50:.2f} | {q99:.2f} |
| under hostile load | {l50:.2f} | {l99:.2f} |
| ratio | {l50 / q50:.2f}x | {l99 / q99:.2f}x |

During the load: {json.dumps(figures["counts"])} (431s answered, idle or slow connections
closed by the server, SQL answers cut at `sql_max_bytes`).
"""


if __name__ == "__main__":
    main()
