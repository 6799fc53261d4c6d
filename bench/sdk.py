"""The Python SDK: what one `track()` costs the caller's thread, and what it delivers.

    python bench/sdk.py [--events 200000] [--rounds 3]

Starts `roost serve` on a fresh data dir, then per round: times each `track()` call on the
caller's thread while the sender thread delivers in the background (p50, p99, mean;
target: under 20 µs), and the delivered events/s from the first call until `flush()`
returns with every event acknowledged. Appends a dated section to bench/RESULTS.md unless
--no-record.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from roost.sdk import Client
from run import new_key, publish, start_roost, wait_ready


def one_round(url: str, key: str, events: int) -> dict[str, float]:
    client = Client(key, url, max_queue=events + 1, flush_at_exit=False)
    costs = []
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for i in range(events):
        before = clock()
        client.track("Bench Event", {"i": i, "plan": "pro"}, user_id=f"user-{i % 1000}")
        costs.append(clock() - before)
    assert client.flush(600)
    elapsed = time.perf_counter() - started
    client.close()
    assert client.sent == events, (client.sent, client.failed, client.dropped)
    costs.sort()
    return {
        "p50_us": costs[len(costs) // 2] / 1000,
        "p99_us": costs[int(len(costs) * 0.99)] / 1000,
        "mean_us": statistics.fmean(costs) / 1000,
        "delivered_per_s": events / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roost-bench-sdk-"))
    data = work / "data"
    server, url = start_roost(data)
    try:
        wait_ready(url, "/readyz", timeout=60)
        key = new_key(data, "write")
        rounds = [one_round(url, key, args.events) for _ in range(args.rounds)]
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — Python SDK — `python bench/sdk.py --events {args.events} --rounds {args.rounds}`\n",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}. "
        "`roost serve` (embedded default) on the same cores; each round a new `Client` sends "
        f"{args.events:,} `track()` calls as fast as the caller makes them (gzip on, batches of 100).\n",
        "| round | track() p50 µs | p99 µs | mean µs | delivered events/s | under 20 µs |",
        "|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(rounds, 1):
        ok = "yes" if r["p50_us"] < 20 and r["mean_us"] < 20 else "**no**"
        lines.append(
            f"| {n} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['mean_us']:.1f} | "
            f"{r['delivered_per_s']:,.0f} | {ok} |"
        )
    report = "\n".join(lines) + "\n"
    publish(report, record=not args.no_record)


if __name__ == "__main__":
    main()
