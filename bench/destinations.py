"""One destination down under load while another keeps up: a paused or failing destination
must never hold back another, or ingest (issue 21).

    python bench/destinations.py [--duration 600] [--rate 5000] [--down hang|refuse|error]

Starts Roost (`roost serve`, the embedded default), a webhook sink that answers at once
(bench/sink.py) and a "down" endpoint — `hang`: accepts connections and never answers (each
try costs the destination's timeout, the worst case), `refuse`: a closed port, `error`:
answers 503 to everything — with two webhook destinations, `up` and `down`. Sends `--rate`
events a second in 100-event batches for `--duration` seconds, and every second reads
`GET /api/v1/destinations`: the up destination's lag and oldest waiting event, the down one's
backlog. Records in bench/RESULTS.md: the up destination's oldest waiting event (p50, p99,
max; the target is under 5 s throughout), ingest's acknowledgement latency and failures, and
the down destination's backlog at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roost.devtools.servers import free_port
from run import new_key, publish, start_roost, track_body, wait_ready

BATCH = 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def hanging(port: int) -> socket.socket:
    """A listener that accepts and never answers (its connections are kept open)."""
    server = socket.create_server(("127.0.0.1", port))
    kept: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            kept.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return server


class Failing(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def down_endpoint(kind: str) -> tuple[str, Any]:
    port = free_port()
    if kind == "hang":
        return f"http://127.0.0.1:{port}/hook", hanging(port)
    if kind == "error":
        server = ThreadingHTTPServer(("127.0.0.1", port), Failing)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{port}/hook", server
    return f"http://127.0.0.1:{port}/hook", None  # refuse: nothing listens


async def load(url: str, key: str, rate: int, duration: float) -> dict[str, Any]:
    """`rate` events a second in BATCH-event batches, paced; each request's latency."""
    event = json.loads(track_body())
    event["type"] = "track"
    body = json.dumps({"batch": [event] * BATCH}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    every = BATCH / rate
    latencies: list[float] = []
    failed = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one() -> None:
            nonlocal failed
            t0 = time.perf_counter()
            try:
                response = await client.post("/v1/batch", content=body, headers=headers)
                if response.status_code != 200:
                    failed += 1
            except httpx.HTTPError:
                failed += 1
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.monotonic()
        n = 0
        while (now := time.monotonic()) - start < duration:
            due = start + n * every
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one()))
            n += 1
        await asyncio.gather(*tasks)
    return {"requests": n, "failed": failed, "latencies": latencies}


async def watch(url: str, key: str, stop: asyncio.Event) -> list[dict[str, Any]]:
    samples = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while not stop.is_set():
            t0 = time.monotonic()
            found = await client.get("/api/v1/destinations",
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            by_name = {d["name"]: d for d in found.json()["destinations"]}
            samples.append({"at": t0, **{name: by_name[name] for name in ("up", "down")}})
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
    return samples


async def measure(url: str, write: str, read: str, args: argparse.Namespace) -> dict[str, Any]:
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(url, read, stop))
    sent = await load(url, write, args.rate, args.duration)
    await asyncio.sleep(5)  # the last seconds' deliveries
    stop.set()
    return {"sent": sent, "samples": await watcher}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--rate", type=int, default=5000, help="events a second")
    parser.add_argument("--down", choices=("hang", "refuse", "error"), default="hang")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sink_port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "sink.py"), str(sink_port)]
    )
    down_url, down_server = down_endpoint(args.down)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server, url = start_roost(data)
        try:
            wait_ready(url, "/readyz", timeout=60)
            write, read, admin = (new_key(data, k) for k in ("write", "read", "admin"))
            for name, target in (("up", f"http://127.0.0.1:{sink_port}/hook"), ("down", down_url)):
                made = httpx.put(f"{url}/api/v1/admin/destinations/{name}",
                                 json={"kind": "webhook", "url": target, "timeout": 10},
                                 headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
                assert made.status_code == 200, made.text
            found = asyncio.run(measure(url, write, read, args))
        finally:
            server.terminate()
            server.wait(timeout=60)
            sink.terminate()
            if down_server is not None:
                (
                    down_server.close
                    if isinstance(down_server, socket.socket)
                    else down_server.shutdown
                )()
    publish(render(args, found), record=not args.no_record)


def render(args: argparse.Namespace, found: dict[str, Any]) -> str:
    samples = found["samples"]
    waited = [s["up"]["oldest_waiting_seconds"] or 0.0 for s in samples]
    lag = [s["up"]["lag"] for s in samples]
    latencies = [x * 1000 for x in found["sent"]["latencies"]]
    last = samples[-1]
    events = found["sent"]["requests"] * BATCH
    verdict = "✓" if max(waited) < 5 else "✗"
    return (
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — one destination down ({args.down}) under "
        f"load — `python bench/destinations.py --duration {args.duration:g} --rate {args.rate} "
        f"--down {args.down}`\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}. Roost embedded "
        f"(`roost serve`), two webhook destinations: `up` (bench/sink.py, answers at once) and "
        f"`down` ({args.down}, timeout 10 s); {args.rate:,} events/s in {BATCH}-event batches "
        f"for {args.duration:g} s ({events:,} events), the destinations read every second.\n\n"
        "| measurement | figure | target |\n|---|---|---|\n"
        f"| `up`: oldest waiting event, p50 / p99 / max | {percentile(waited, 0.5):.2f} / "
        f"{percentile(waited, 0.99):.2f} / {max(waited):.2f} s | < 5 s throughout {verdict} |\n"
        f"| `up`: lag, p50 / max | {percentile(lag, 0.5):,.0f} / {max(lag):,} events | |\n"
        f"| `up` at the end: delivered, failures | {last['up']['delivered']:,}, "
        f"{last['up']['failures']:,} | all |\n"
        f"| `down` at the end: lag, oldest waiting, failures | {last['down']['lag']:,} events, "
        f"{last['down']['oldest_waiting_seconds'] or 0:.0f} s, {last['down']['failures']:,} | |\n"
        f"| ingest: acknowledgement p50 / p99 / max | {statistics.median(latencies):.1f} / "
        f"{percentile(latencies, 0.99):.1f} / {max(latencies):.1f} ms | |\n"
        f"| ingest: requests failed | {found['sent']['failed']} of {found['sent']['requests']:,}"
        " | 0 |\n"
    )


if __name__ == "__main__":
    main()
