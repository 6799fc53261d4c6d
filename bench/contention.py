"""Ingest while reports run: what a dashboard full of heavy reports costs the clients sending
events, and how long those reports take meanwhile.

    python bench/contention.py --data DIR [--duration 10] [--readers 2] [--threads 0]

DIR is a data dir bench/queries.py filled (`--data`; 10 M events at `--scale 365`). Starts
`roost serve` on it (`--threads`: its `query_threads`, 0 every core), then sends single events
with wrk for `--duration` seconds twice: alone, and while `--readers` clients each ask the
heaviest reports of the default project in turn, computed afresh (each load of new events
empties the result cache). The events go to a project of their own, `contention`, and are
erased at the end, so DIR is left as it was. Records ingest requests/s and p99 both ways, and the
reports' p50/p95 under that load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from run import (
    Process,
    erase_project,
    free_port,
    lua_script,
    new_key,
    publish,
    side_project_key,
    track_body,
    wait_ready,
    wrk,
)

ASKS: list[tuple[str, dict[str, Any]]] = [  # each over every event: the heaviest ranges
    ("/api/v1/query", {"metrics": ["visitors", "pageviews"], "dimensions": ["page"], "limit": 10}),
    ("/api/v1/query", {"metrics": ["events", "users"], "dimensions": ["event"], "limit": 10}),
    ("/api/v1/reports/retention", {"period": "week"}),
    ("/api/v1/reports/runs", {"limit": 20}),
]  # fmt: skip


def readers(url: str, key: str, count: int, stop: threading.Event) -> list[float]:
    """`count` clients asking ASKS in turn until `stop`; the seconds each answer took."""
    times: list[float] = []

    def ask() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=120) as client:  # fmt: skip
            while not stop.is_set():
                for path, body in ASKS:
                    started = time.perf_counter()
                    client.post(path, json={"date_range": "all", **body}).raise_for_status()
                    times.append(time.perf_counter() - started)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="the server's query_threads")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roost-bench-contention-"))
    write, read = side_project_key(args.data, "contention"), new_key(args.data, "read")
    single = lua_script(work, track_body(), write)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process(
        [sys.executable, "-m", "roost", "serve", "--data", str(args.data), "--port", str(port)],
        {"ROOST_LOG_LEVEL": "warning", "ROOST_QUERY_THREADS": str(args.threads)},
    )
    try:
        wait_ready(url, "/readyz", timeout=600)
        wrk(url + "/v1/track", single, 2, args.connections)  # warm up
        alone = wrk(url + "/v1/track", single, args.duration, args.connections)
        stop = threading.Event()
        found: list[list[float]] = []
        reading = threading.Thread(
            target=lambda: found.append(readers(url, read, args.readers, stop))
        )
        reading.start()
        time.sleep(1)  # the readers under way
        loaded = wrk(url + "/v1/track", single, args.duration, args.connections)
        stop.set()
        reading.join()
        erase_project(args.data, url, "contention")  # DIR left as it was
    finally:
        server.stop()
    times = sorted(found[0]) if found else []

    def q(p: float) -> float:
        return times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else float("nan")

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    threads = args.threads or os.cpu_count()
    report = (
        f"\n## {now} — ingest while reports run — `python bench/contention.py --data DIR "
        f"--duration {args.duration} --readers {args.readers} --threads {args.threads}`\n\n"
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; wrk -t2 -c{args.connections} (single events) on the same "
        f"cores; DuckDB threads per query: {threads}. Readers: {args.readers} clients asking "
        f"top pages, users per event, weekly retention and runs over every event, in turn.\n\n"
        "| measurement | alone | while reports run |\n|---|---|---|\n"
        f"| single-event req/s | {alone['rps']:,.0f} | {loaded['rps']:,.0f} "
        f"({loaded['rps'] / alone['rps']:.0%}) |\n"
        f"| single-event p99 | {alone['p99_ms']:.1f} ms | {loaded['p99_ms']:.1f} ms |\n"
        f"| reports answered, p50 / p95 | | {len(times)}, "
        f"{statistics.median(times) * 1000 if times else float('nan'):,.0f} / {q(0.95):,.0f} ms |\n"
    )
    publish(report, record=not args.no_record)


if __name__ == "__main__":
    main()
