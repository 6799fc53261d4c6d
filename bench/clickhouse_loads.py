"""What the ClickHouse Warehouse's hourly rows (counts and presence rows, filled by materialized
views as part of each insert: storage/warehouse/clickhouse_hourly.py) cost its loads: the same
events loaded into fresh databases of one clickhouse-server with them and without, rounds
alternating.

    python bench/clickhouse_loads.py --data DIR [--events 2000000] [--rounds 2]

DIR is a data dir bench/queries.py filled, with no server running on it; its Log's first
`--events` events are loaded through the Warehouse's own `load` (what a worker does, groups as
the Log stored them, LoadShape.events an insert), ClickHouse and the loader on the same
cores. The issue's bar (18): with rollups ≥ 80% of the events/s without. Not recorded
automatically.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from roost.devtools.servers import ClickHouse
from roost.storage.log.sqlite import SQLiteLog
from roost.storage.warehouse.clickhouse import ClickHouseWarehouse


def loaded(url: str, log: SQLiteLog, events: int, hourly: bool) -> float:
    """Events/s of loading the Log's first `events` into a fresh database at `url`."""
    warehouse = ClickHouseWarehouse(url, timeout=600)
    try:
        if not hourly:
            warehouse._make_hourly = lambda: None  # type: ignore[method-assign]
        warehouse.take_over()
        done, started = 0, time.perf_counter()
        while done < events:
            groups = log.read_groups(done, warehouse.load_shape.events)
            if not groups:  # a Log of fewer events: all of them
                break
            warehouse.load(groups)
            done = warehouse.loaded_offset()
        return done / (time.perf_counter() - started)
    finally:
        warehouse.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    log = SQLiteLog(Path(args.data) / "log.sqlite")
    server = ClickHouse().start()
    try:
        rates: dict[bool, list[float]] = {False: [], True: []}
        for n in range(args.rounds):
            for hourly in (False, True):
                url = server.url.replace("/roost", f"/load{n}{'h' if hourly else ''}")
                rate = loaded(url, log, args.events, hourly)
                rates[hourly].append(rate)
                print(f"round {n + 1}, hourly rows {'on ' if hourly else 'off'}: "
                      f"{rate:,.0f} events/s", flush=True)  # fmt: skip
        share = [on / off for on, off in zip(rates[True], rates[False], strict=True)]
        print(f"with hourly rows: {min(share):.0%}–{max(share):.0%} of the events/s without")
    finally:
        server.stop()
        log.close_sync()


if __name__ == "__main__":
    main()
