"""A query of the embedded DuckDB may use every core, on threads that yield to ingest: its
worker threads run niced (Linux; nothing to check elsewhere)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from roost.config import Settings
from roost.storage.warehouse.duckdb import WORKERS_NICE, DuckDBWarehouse, open_warehouse

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="threads are niced on Linux"),
    # a runner already niced would give unniced threads its own niceness, not 0
    pytest.mark.skipif(
        sys.platform == "linux" and os.getpriority(os.PRIO_PROCESS, 0) != 0,
        reason="the tests run niced: run them at niceness 0 to check the workers'",
    ),
]


def _threads() -> dict[str, tuple[int, str]]:
    """This process's threads: id → (niceness, name)."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        with open(task / "stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        found[task.name] = (int(fields[16]), (task / "comm").read_text().strip())
    return found


def test_duckdbs_workers_are_niced_and_the_caller_is_not(tmp_path: Path) -> None:
    before = _threads()
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb", threads=3, nice=7)
    try:
        started = {t: v for t, v in _threads().items() if t not in before}
        assert len(started) >= 2, started  # threads=3: the caller's and two workers
        assert {nice for nice, _ in started.values()} == {7}, started
        assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the opener's niceness did not leak
        assert warehouse.report("SELECT count(*) FROM range(3)", timeout=10, max_rows=1).rows == [
            [3]
        ]
    finally:
        warehouse.close()


def test_the_servers_warehouse_runs_its_workers_at_the_lowest_priority(tmp_path: Path) -> None:
    before = _threads()
    warehouse = open_warehouse(f"duckdb:///{tmp_path / 'events.duckdb'}",
                               Settings(data=str(tmp_path), query_threads=2))  # fmt: skip
    try:
        started = {t: v for t, v in _threads().items() if t not in before}
        assert started and {nice for nice, _ in started.values()} == {WORKERS_NICE}, started
    finally:
        warehouse.close()
    unniced = Settings(data=str(tmp_path / "b"), query_threads=2, query_nice=0)
    before = _threads()
    warehouse = open_warehouse(f"duckdb:///{tmp_path / 'b.duckdb'}", unniced)
    try:
        assert {nice for t, (nice, _) in _threads().items() if t not in before} == {0}
    finally:
        warehouse.close()
