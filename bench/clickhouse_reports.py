"""The reports on the ClickHouse Warehouse beside the same on DuckDB, each SQL timed alone
(issue 18: "the same reports on the ClickHouse Warehouse no slower per event").

    python bench/clickhouse_reports.py --data DIR [--keep CHDIR] [--repeat 3] [--days N]
                                       [NAME ...]

DIR is a data dir bench/queries.py filled, with no server running on it. Starts
clickhouse-server (its data in CHDIR if given, kept there for the next run), takes it over as a
worker does (making its hourly counts from the events there, if it has none: the time it
took is printed), loads into it the events of DIR's Log that it does not hold yet through the
Warehouse's own `load` (groups as the Log stored them) and DIR's identity links, then runs each ask of
bench/report_sql.py (in all time; with --days N, bench/queries.py's standard queries in their
ranges) on ClickHouse and on DIR's DuckDB Warehouse, and prints the minimum and median of
`--repeat` runs of each. Not recorded automatically.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from report_sql import ASKS, ranged, timed
from roost.config import Settings
from roost.devtools.servers import ClickHouse
from roost.errors import BadRequest
from roost.query.reports import REPORTS
from roost.storage.backends import open_warehouse
from roost.storage.log.sqlite import SQLiteLog
from roost.storage.warehouse.clickhouse import ClickHouseWarehouse


def fill(clickhouse: ClickHouseWarehouse, data: Path) -> None:
    """Load the Log's events the Warehouse does not hold yet, and the identity links."""
    log = SQLiteLog(data / "log.sqlite")
    try:
        last = log.last_offset()
        loaded = clickhouse.loaded_offset()
        started, count = time.perf_counter(), 0
        while loaded < last:
            groups = log.read_groups(loaded, clickhouse.load_shape.events)
            clickhouse.load(groups)
            count += clickhouse.loaded_offset() - loaded
            loaded = clickhouse.loaded_offset()
        seconds = time.perf_counter() - started
        if count:
            print(f"loaded {count:,} events in {seconds:.0f} s ({count / seconds:,.0f}/s)")
    finally:
        log.close_sync()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--keep")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=int)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    asks = ASKS if args.days is None else ranged(args.days)
    asks = {name: ask for name, ask in asks.items() if not args.names or name in args.names}
    data = Path(args.data)
    duckdb = open_warehouse(Settings(data=str(data), log_format="text"))
    server = ClickHouse(kept=Path(args.keep) if args.keep else None).start()
    try:
        clickhouse = ClickHouseWarehouse(server.url, timeout=600)
        started = time.perf_counter()
        clickhouse.take_over()  # as a worker starts: the hourly counts made if missing
        print(f"took over in {time.perf_counter() - started:.1f} s")
        fill(clickhouse, data)
        links = duckdb.report(
            "SELECT project_id, alias, user_id FROM roost.identities", timeout=60, max_rows=10**8
        ).rows
        clickhouse.replace_identities([(int(p), str(a), str(u)) for p, a, u in links])
        print(f"{'ask':40s} {'ClickHouse min / median ms':>28s} {'DuckDB min / median ms':>24s}")
        for name, (kind, body) in asks.items():
            report = REPORTS[kind]
            parsed = report.parse({"date_range": "all", **body}, datetime.now(UTC))
            cells = []
            for warehouse in (clickhouse, duckdb):
                sql = report.build(parsed, 1, warehouse.flavor)
                run = functools.partial(warehouse.report, sql, timeout=600, max_rows=10_000)
                try:
                    spent = timed(run, args.repeat)
                except BadRequest as refused:  # a query past a limit: said, and on to the next
                    cells.append(str(refused)[:60])
                    continue
                cells.append(f"{min(spent):9.0f} / {statistics.median(spent):7.0f}")
            print(f"{name[:40]:40s} {cells[0]:>28s} {cells[1]:>24s}", flush=True)
        clickhouse.close()
    finally:
        server.stop()
        duckdb.close()


if __name__ == "__main__":
    main()
