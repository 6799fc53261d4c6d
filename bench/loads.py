"""What the DuckDB Warehouse's rollups (presence rows, visits, last-seen rows, session hours)
cost the Loader: the same events loaded into fresh Warehouses with them and without, rounds
alternating.

    python bench/loads.py [--events 500000] [--rounds 3] [--data DIR] [--scale 20]

The events are a Roost Log's, with the identity links its Warehouse holds: `--data` names a
filled data dir (bench/queries.py --data leaves one), else `roost demo --scale S` fills a fresh
one over HTTP first. Each load is what
the Loader hands over under load (groups of the Log adding up to LoadShape.events); only
`load()` is timed, merges included, and a report once all are loaded (it rolls up what the
loads left; not the Loader's tidying when idle, which only keeps reads quick). The issue's
bar: with rollups ≥ 80% of the events/s without. Appends a dated section to
bench/RESULTS.md unless --no-record.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from roost.storage.log import Group
from roost.storage.log.sqlite import SQLiteLogReader
from roost.storage.warehouse.duckdb import DuckDBWarehouse
from run import publish, start_roost
from run import wait_ready as wait_up


def fill(data: Path, scale: float) -> None:
    server, url = start_roost(data)
    try:
        wait_up(url, "/readyz", timeout=600)
        subprocess.run(
            [sys.executable, "-m", "roost", "demo", "--data", str(data), "--url", url,
             "--scale", str(scale), "--days", "28", "--until", "2024-06-30"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(120)


def batches(log: Path, events: int, size: int) -> list[list[Group]]:
    """The Log's first `events` events as the Loader would hand them over."""
    reader = SQLiteLogReader(log)
    out: list[list[Group]] = []
    after, taken = 0, 0
    while taken < events:
        groups = reader.read_groups(after, size)
        if not groups:
            break
        out.append(groups)
        after = max(g[0] + g[1] - 1 for g in groups)
        taken += sum(g[1] for g in groups)
    reader.close_sync()
    return out


def links(data: Path) -> list[tuple[int, str, str]]:
    """The filled data dir's identity links (the profiles' links as its Warehouse holds them)."""
    con = duckdb.connect(str(data / "events.duckdb"), read_only=True)
    try:
        return [
            (int(p), str(a), str(u))
            for p, a, u in con.execute(
                "SELECT project_id, alias, user_id FROM roost.identities"
            ).fetchall()
        ]
    finally:
        con.close()


def timed(
    loads: list[list[Group]], with_rollups: bool, identities: list[tuple[int, str, str]]
) -> float:
    """Seconds spent in load() for all of them, into a fresh Warehouse that has the links."""
    with tempfile.TemporaryDirectory(prefix="roost-bench-loads-") as tmp:
        warehouse = DuckDBWarehouse(Path(tmp) / "events.duckdb", with_rollups=with_rollups)
        warehouse.replace_identities(identities)
        spent = 0.0
        try:
            for groups in loads:
                started = time.perf_counter()
                warehouse.load(groups)
                spent += time.perf_counter() - started
                warehouse.maybe_checkpoint()
            started = time.perf_counter()  # what the loads left to roll up is their work too:
            warehouse.report("SELECT 1", timeout=600, max_rows=1)  # a report rolls it first
            spent += time.perf_counter() - started
        finally:
            warehouse.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="a filled data dir")
    parser.add_argument("--scale", type=float, default=20)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roost-bench-loads-"))
    data = args.data or work / "data"
    try:
        if args.data is None:
            fill(data, args.scale)
        loads = batches(data / "log.sqlite", args.events, DuckDBWarehouse.load_shape.events)
        identities = links(data)
        events = sum(g[1] for groups in loads for g in groups)
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for with_rollups in (False, True):
                rates[with_rollups].append(events / timed(loads, with_rollups, identities))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    without, kept = statistics.median(rates[False]), statistics.median(rates[True])
    rounds = {k: " / ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
    command = f"python bench/loads.py --events {args.events} --rounds {args.rounds}"
    report = (
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — loads — `{command}`\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}. {events:,} demo "
        f"events (the Log of `roost demo`) and its {len(identities):,} identity links, loaded as the Loader does under load "
        f"({DuckDBWarehouse.load_shape.events:,} at a time) into a fresh DuckDB Warehouse; "
        "load() timed, merges included, then a report (it rolls up what is left); medians of the rounds (each in brackets).\n\n"
        "| Warehouse | events/s loaded | of without rollups | target |\n|---|---|---|---|\n"
        f"| without rollups | {without:,.0f} ({rounds[False]}) | 100% | |\n"
        f"| with presence rows, visits, last-seen rows and session hours | {kept:,.0f} ({rounds[True]}) | "
        f"{100 * kept / without:.0f}% | ≥ 80% |\n"
    )
    publish(report, record=not args.no_record)


if __name__ == "__main__":
    main()
