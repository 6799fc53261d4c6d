"""The Log stores an event without the fields at their defaults, and every reader of it gives
the same values as for the full form an older Roost stored: false, empty objects, NULLs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from roost.model import Event, as_dict
from roost.storage.log import Group
from roost.storage.warehouse.clickhouse_rows import rows
from roost.storage.warehouse.duckdb import DuckDBWarehouse

MOMENT = datetime(2024, 3, 30, 10, tzinfo=UTC)
PLAIN = Event(message_id="m1", project_id=1, dialect="segment", type="track", event="Buy",
              timestamp=MOMENT, received_at=MOMENT)  # fmt: skip


def full_form(event: Event) -> bytes:
    """How a Roost before this one stored the event: every field, defaults included."""
    return json.dumps([as_dict(event)], default=str).encode()


def test_the_log_leaves_out_what_is_at_its_default() -> None:
    stored = json.loads(msgspec.json.encode([PLAIN]))[0]
    assert set(stored) == {"message_id", "project_id", "dialect", "type", "event",
                           "timestamp", "received_at"}  # fmt: skip
    assert msgspec.json.decode(msgspec.json.encode([PLAIN]), type=list[Event]) == [PLAIN]
    shown = as_dict(PLAIN)  # what a transformation and the debugger see: every field
    assert list(shown) == list(Event.__struct_fields__)
    assert shown["bot"] is False and shown["properties"] == {} and shown["user_id"] is None


def test_the_warehouse_stores_both_forms_alike(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    second = msgspec.structs.replace(PLAIN, message_id="m2")
    try:
        warehouse.load([Group(1, 1, msgspec.json.encode([PLAIN])), Group(2, 1, full_form(second))])
        found = warehouse.report(
            "SELECT log_offset, bot, properties, traits, context, integrations, user_id "
            f"FROM {warehouse.flavor.rows(1)} ORDER BY 1",
            timeout=30,
            max_rows=10,
        ).rows
    finally:
        warehouse.close()
    assert found == [
        [1, False, "{}", "{}", "{}", "{}", None],
        [2, False, "{}", "{}", "{}", "{}", None],
    ]


def test_clickhouse_rows_of_both_forms_are_the_same() -> None:
    lean = rows([Group(1, 1, msgspec.json.encode([PLAIN]))], lambda _: True)
    full = rows([Group(1, 1, full_form(PLAIN))], lambda _: True)
    assert lean == full
    row = json.loads(lean[0])
    assert row["bot"] == 0 and row["properties"] == "{}" and row["context"] == "{}"
