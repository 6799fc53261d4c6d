"""An erased event leaves a tombstone in the Log (project 0, no personal data). No Warehouse
stores one: not when it reads the Log after the erasure (a worker behind, or the events at
the Log's end erased, whose offsets the table then no longer shows), and the ones an older
Roost stored go at the next start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from roost.model import Event
from roost.storage.log import Group
from roost.storage.log.sqlite import tombstone
from roost.storage.warehouse.clickhouse_rows import rows
from roost.storage.warehouse.duckdb import DuckDBWarehouse

MOMENT = datetime(2024, 3, 30, 10, tzinfo=UTC)


def event(n: int, user: str) -> Event:
    return Event(message_id=f"m{n}", project_id=1, dialect="segment", type="track",
                 event="Buy", timestamp=MOMENT, received_at=MOMENT, user_id=user)  # fmt: skip


def group(first: int, *events: Event) -> Group:
    return Group(first, len(events), msgspec.json.encode(list(events)))


def stored(warehouse: DuckDBWarehouse) -> list[list[object]]:
    sql = "SELECT log_offset, project_id, message_id FROM roost.events ORDER BY 1"
    return warehouse.report(sql, timeout=30, max_rows=100).rows


def test_erasing_the_last_events_does_not_bring_back_their_tombstones(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    sent = [event(1, "ann"), event(2, "bob"), event(3, "bob")]
    warehouse = DuckDBWarehouse(path)
    try:
        warehouse.load([group(1, *sent)])
        assert warehouse.erase(1, ids=["bob"]) == 2
    finally:
        warehouse.close()
    log = group(1, sent[0], tombstone(sent[1]), tombstone(sent[2]))  # the Log after it
    warehouse = DuckDBWarehouse(path)
    try:
        assert warehouse.loaded_offset() == 3  # not 1: the Loader goes on after offset 3
        warehouse.load([log, group(4, event(4, "cy"))])
        assert stored(warehouse) == [[1, 1, "m1"], [4, 1, "m4"]]
    finally:
        warehouse.close()


def test_a_warehouse_reading_the_log_after_an_erasure_skips_its_tombstones(
    tmp_path: Path,
) -> None:
    log = [group(1, event(1, "ann"), tombstone(event(2, "bob"))), group(3, event(3, "cy"))]
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    try:
        warehouse.load(log)
        assert stored(warehouse) == [[1, 1, "m1"], [3, 1, "m3"]]
        assert warehouse.loaded_offset() == 3
    finally:
        warehouse.close()
    assert [msgspec.json.decode(r)["message_id"] for r in rows(log, lambda _: True)] == [
        "m1",
        "m3",
    ]  # ClickHouse's rows too


def test_tombstones_an_older_roost_stored_go_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    warehouse = DuckDBWarehouse(path)
    try:
        warehouse.load([group(1, event(1, "ann"))])
        with warehouse._cursor() as cursor:  # as a Roost before this one loaded them
            cursor.execute(
                "INSERT INTO roost.events SELECT * REPLACE (0 AS project_id, 7 AS log_offset, "
                "'m7' AS message_id, NULL AS user_id) FROM roost.events"
            )
    finally:
        warehouse.close()
    warehouse = DuckDBWarehouse(path)
    try:
        assert stored(warehouse) == [[1, 1, "m1"]]
        assert warehouse.loaded_offset() == 7
    finally:
        warehouse.close()
    warehouse = DuckDBWarehouse(path)  # and still after the start after that
    try:
        assert warehouse.loaded_offset() == 7
    finally:
        warehouse.close()
