"""Each report's SQL timed alone on a filled data dir: no HTTP, no server, no cache — what
the Warehouse itself spends, for finding which report a page waits on.

    python bench/report_sql.py --data DIR [--repeat 3] [--sql] [--statistics-pass] [--days N]
                               [NAME ...]

DIR is a data dir bench/queries.py filled (`--data`), with no server running on it. The asks
are the dashboard pages' own (their panels from roost.web.dashboard.pages) and the game and
product reports, in all time; the Warehouse is opened alone, without the consumers (whose
tidying, right after an open, would share the cores). Prints the minimum and median of
`--repeat` runs of each (or only those NAMEd), and with --sql the SQL. With
--statistics-pass, each SQL instead on a plain read-only connection, with DuckDB's statistics
propagation on and then off (as the Warehouse runs, storage/warehouse/duckdb.py says why):
what that pass being off costs each report. Not recorded automatically: for comparing a change
before and after (run it with `PYTHONPATH=<worktree>/src` for the before). With --days N,
instead bench/queries.py's standard queries, in their ranges of N days (ended in the past:
what a report over a range that is not "until now" reads).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from roost.config import Settings
from roost.query.reports import REPORTS
from roost.storage.backends import open_warehouse
from roost.storage.warehouse import duckdb_rollups
from roost.web.dashboard.pages import PANELS, WEB_TOTALS

FUNNEL = [["is", "page", ["/pricing"]], ["is", "page", ["/signup"]], "Signed Up"]
ASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "overview: totals": ("query", {"metrics": ["events", "users", "visitors", "sessions"]}),
    "overview: per month": ("query", {"metrics": ["events", "users"], "interval": "month"}),
    "web: totals": ("query", {"metrics": WEB_TOTALS}),
    "web: per month": ("query", {"metrics": ["visitors", "pageviews"], "interval": "month"}),
    **{f"panel: {name}": ask for name, ask in PANELS.items()},
    "people": ("query", {"metrics": ["events"], "dimensions": ["user"], "limit": 50,
                         "filters": [["is_not", "user", [""]]]}),
    "funnel": ("funnel", {"steps": FUNNEL}),
    "funnel of events": ("funnel", {"steps": ["Signed Up", "Dashboard Viewed", "Report Created"]}),
    "retention": ("retention", {"period": "week", "periods": 8}),
    "builds": ("query", {"metrics": ["events"], "dimensions": ["build"], "limit": 100}),
    "sessions": ("sessions", {}),
    "sessions per month": ("sessions", {"by": ["time:month"]}),
    "runs": ("runs", {"limit": 20}),
    "resources": ("resources", {"limit": 20}),
    "errors": ("errors", {"limit": 20}),
    "players": ("players", {}),
    "players per month": ("players", {"by": ["time:month"]}),
}  # fmt: skip


def ranged(days: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """bench/queries.py's standard queries, as (report, body)."""
    from queries import queries  # bench/queries.py, beside this script

    kinds = {report.path: kind for kind, report in REPORTS.items()}
    return {name: (kinds[path], body) for name, (path, body) in queries(days).items()}


def timed(run: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _fetched(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Any]:
    return con.execute(sql, params).fetchall()


def statistics_pass(data: str, sqls: dict[str, str], repeat: int) -> None:
    """Each SQL with DuckDB's statistics propagation on, then off: one connection each (a
    process opens a file with one configuration at a time)."""
    mins: dict[tuple[str, bool], float] = {}
    for off in (False, True):
        config: dict[str, str | bool | int | float | list[str]] = (
            {"disabled_optimizers": "statistics_propagation"} if off else {}
        )
        con = duckdb.connect(str(Path(data) / "events.duckdb"), read_only=True, config=config)
        try:  # the rollups' offset, as the Warehouse gives it to a report
            rolled = con.execute(f"SELECT rolled FROM {duckdb_rollups.ROLLED}").fetchone()
            params = {duckdb_rollups.ROLLED_PARAMETER: rolled[0] if rolled else 0}
            for name, sql in sqls.items():
                needed = set().union(*(s.named_parameters for s in con.extract_statements(sql)))
                given = {k: v for k, v in params.items() if k in needed}
                run = functools.partial(_fetched, con, sql, given)
                mins[name, off] = min(timed(run, repeat))
        finally:
            con.close()
    total = [0.0, 0.0]
    for name in sqls:
        on, off_ = mins[name, False], mins[name, True]
        total[0], total[1] = total[0] + on, total[1] + off_
        print(f"{name:28s} pass on {on:7.0f} ms   off {off_:7.0f} ms   ×{off_ / on:.2f}")
    print(f"{'all of them':28s} pass on {total[0]:7.0f} ms   off {total[1]:7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sql", action="store_true")
    parser.add_argument("--statistics-pass", action="store_true")
    parser.add_argument("--days", type=int)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    asks = ASKS if args.days is None else ranged(args.days)
    warehouse = open_warehouse(Settings(data=args.data, log_format="text"))
    try:
        sqls = {}
        for name, (kind, body) in asks.items():
            if args.names and name not in args.names:
                continue
            report = REPORTS[kind]
            parsed = report.parse({"date_range": "all", **body}, datetime.now(UTC))
            sqls[name] = report.build(parsed, 1, warehouse.flavor)
        if not args.statistics_pass:
            for name, sql in sqls.items():
                run = functools.partial(warehouse.report, sql, timeout=300, max_rows=10_000)
                times = timed(run, args.repeat)
                print(f"{name:28s} min {min(times):7.0f} ms   median "
                      f"{statistics.median(times):7.0f} ms")  # fmt: skip
                if args.sql:
                    print(sql)
    finally:
        warehouse.close()
    if args.statistics_pass:
        statistics_pass(args.data, sqls, args.repeat)


if __name__ == "__main__":
    main()
