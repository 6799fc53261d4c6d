"""Each report's SQL timed alone on a filled data dir: no HTTP, no server, no cache — what
the Warehouse itself spends, for finding which report a page waits on.

    python bench/report_sql.py --data DIR [--repeat 3] [--sql] [NAME ...]

DIR is a data dir bench/queries.py filled (`--data`), with no server running on it. Prints the
minimum and median of `--repeat` runs of each report (or only those NAMEd), and with --sql
the SQL. Not recorded automatically: for comparing a change before and after (run it with
`PYTHONPATH=<worktree>/src` for the before).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from roost.config import Settings
from roost.query.reports import REPORTS
from roost.runtime import Runtime

ASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "totals": ("query", {"metrics": ["events", "users", "visitors", "sessions"]}),
    "events per day": ("query", {"metrics": ["events", "users"], "dimensions": ["time:day"]}),
    "top events": ("query", {"metrics": ["events"], "dimensions": ["event"], "limit": 10}),
    "top pages": ("query", {"metrics": ["visitors", "pageviews"], "dimensions": ["page"], "limit": 10}),
    "funnel": ("funnel", {"steps": [["is", "page", ["/pricing"]], ["is", "page", ["/signup"]], "Signed Up"]}),
    "retention": ("retention", {"period": "week"}),
    "sessions": ("sessions", {}),
    "sessions by day": ("sessions", {"by": ["time:day"]}),
    "runs": ("runs", {"limit": 20}),
    "resources": ("resources", {"limit": 20}),
    "errors": ("errors", {"limit": 20}),
    "players": ("players", {}),
    "players by day": ("players", {"by": ["time:day"]}),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sql", action="store_true")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    runtime = Runtime(Settings(data=args.data, log_format="text", forwarders="thread")).open()
    try:
        for name, (kind, body) in ASKS.items():
            if args.names and name not in args.names:
                continue
            report = REPORTS[kind]
            parsed = report.parse({"date_range": "all", **body}, datetime.now(UTC))
            sql = report.build(parsed, 1, runtime.warehouse.flavor)
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                runtime.warehouse.report(sql, timeout=300, max_rows=10_000)
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"{name:18s} min {min(times):7.0f} ms   median {statistics.median(times):7.0f} ms"
            )
            if args.sql:
                print(sql)
    finally:
        runtime.close_sync()


if __name__ == "__main__":
    main()
