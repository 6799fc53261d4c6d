"""The server's peak resident memory while an erasure is rewritten off the disk.

    python bench/scrub.py --data DIR

DIR is a data dir bench/queries.py filled (`--data`). Starts `roost serve` on it, sends a few
events to a project of their own (`scrubtest`), erases them (which rewrites the Warehouse's
whole file without them), waits until the erasure is off the disk, and records the server's
resident memory at start and at its peak, sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from run import Process, erase_project, free_port, publish, side_project_key, wait_ready

PROJECT = "scrubtest"


def resident_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    write = side_project_key(args.data, PROJECT)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process(
        [sys.executable, "-m", "roost", "serve", "--data", str(args.data), "--port", str(port)],
        {"ROOST_LOG_LEVEL": "warning"},
    )
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            with contextlib.suppress(FileNotFoundError):
                peak[0] = max(peak[0], resident_mb(server.proc.pid))

    try:
        wait_ready(url, "/readyz", timeout=600)
        at_start = resident_mb(server.proc.pid)
        threading.Thread(target=sample, daemon=True).start()
        for i in range(10):
            httpx.post(
                f"{url}/v1/track",
                json={"userId": "s", "event": "S", "messageId": f"scrub-{i}-{time.time()}"},
                headers={"X-Write-Key": write},
            ).raise_for_status()
        time.sleep(2)  # loaded
        started = time.perf_counter()
        erase_project(args.data, url, PROJECT)
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        server.stop()
    size = sum(f.stat().st_size for f in args.data.glob("events.duckdb")) / 1e6
    report = (
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — an erasure rewritten off the disk — "
        f"`python bench/scrub.py --data DIR`\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}; the Warehouse's "
        f"file {size:,.0f} MB. Resident memory of `roost serve`: {at_start:,} MB at start, "
        f"{peak[0]:,} MB at its peak; erasure and rewrite {seconds:.0f} s.\n"
    )
    publish(report, record=not args.no_record)


if __name__ == "__main__":
    main()
