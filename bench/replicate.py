"""A larger data dir for bench/queries.py and bench/report_sql.py, made from a filled one: its
default project's events and identity links copied `--copies` times with new ids, each copy
`--days` × k days later — e.g. the 10 M dir of `bench/queries.py --scale 365` as ~100 M
events over ten 28-day spans (issue 18's second scale), in ~2 minutes where `roost demo` over
HTTP would take ~2 hours.

    python bench/replicate.py --data DIR --to NEW [--copies 9] [--days 28] [--until TIME]

DIR must have no server running. NEW gets DIR's Log, metadata and Warehouse, then in the
Warehouse the copies: every id column suffixed `~k` (so each copy is other people, visitors
and sessions), its times moved, its Log offsets negative (below every offset of the Log, so
the Loader and the rollups' offsets are untouched: the copies are events the Log no longer
has, as after a retention cut). The links are copied in the metadata too, or Roost's first
copy of the profiles' links would drop the copies' links again. The rollup tables are
dropped: `roost serve` (or any Runtime) makes them from the events at its first open — its
own fill, ~7 minutes for 100 M on 2 cores. Only the reports' times are meant to be measured
on it; the events were never sent.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import duckdb

from roost.storage.warehouse.schema import ALL_COLUMNS

IDS = {"message_id", "user_id", "anonymous_id", "previous_id", "session_id", "visitor", "group_id"}
TIMES = {"timestamp", "original_timestamp", "sent_at"}
ROLLUPS = ("presence", "visits", "rollups", "seen", "seen_held", "session_hours",
           "session_hours_held", "session_rows", "counts", "counts_held")  # fmt: skip
FILES = ("metadata.sqlite", "log.sqlite", "events.duckdb")


def copied(k: int, days: int) -> str:
    """The columns of the k-th copy of an event."""
    columns = []
    for column in ALL_COLUMNS:
        name = f'"{column.name}"'
        if column.name == "log_offset":
            columns.append(f"-({k * 1_000_000_000} + log_offset)")  # a BIGINT literal
        elif column.name in IDS:
            columns.append(f"{name} || '~{k}'")  # NULL stays NULL
        elif column.name in TIMES:
            columns.append(f"{name} + INTERVAL {days * k} DAY")
        else:
            columns.append(name)
    return ", ".join(columns)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--to", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=9)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument(
        "--until",
        help="copy only the events before this time (e.g. the fill's end: not "
        "bench/queries.py's ticks of today, whose copies would lie in the future)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    args.to.mkdir(parents=True, exist_ok=False)
    for name in FILES:
        shutil.copy(args.data / name, args.to / name)
    con = duckdb.connect(str(args.to / "events.duckdb"))
    # the original events: the default project's, of the Log (no copies of copies)
    originals = "project_id = 1 AND log_offset > 0"
    if args.until:
        originals += f" AND timestamp < TIMESTAMP '{datetime.fromisoformat(args.until)}'"
    for k in range(1, args.copies + 1):
        con.execute(
            f"INSERT INTO roost.events SELECT {copied(k, args.days)} FROM roost.events "
            f"WHERE {originals}"
        )
        con.execute(
            f"INSERT INTO roost.identities SELECT project_id, alias || '~{k}', "
            f"user_id || '~{k}' FROM roost.identities WHERE project_id = 1 "
            "AND NOT contains(alias, '~')"
        )
        print(f"copy {k}: {time.perf_counter() - started:.0f} s", flush=True)
    for table in ROLLUPS:
        con.execute(f"DROP TABLE IF EXISTS roost.{table}")
    con.execute("CHECKPOINT")
    (events,) = con.execute("SELECT count(*) FROM roost.events").fetchall()[0]
    con.close()
    metadata = sqlite3.connect(args.to / "metadata.sqlite")
    for k in range(1, args.copies + 1):
        metadata.execute(
            f"INSERT INTO identities SELECT project_id, alias || '~{k}', user_id || '~{k}' "
            "FROM identities WHERE project_id = 1 AND alias NOT LIKE '%~%'"
        )
    metadata.commit()
    metadata.close()
    print(f"{events:,} events in {args.to} ({time.perf_counter() - started:.0f} s); the "
          "rollups are made at the first open")  # fmt: skip


if __name__ == "__main__":
    main()
