"""ClickHouse's rows from the Log's stored JSON: the fast typed path gives exactly the rows
the forgiving event-by-event path gives, and a group in another shape still loads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.model import Event
from roost.storage.log import Group
from roost.storage.warehouse.clickhouse_rows import _fast, _slow, rows

_encode = msgspec.json.Encoder().encode
members = st.dictionaries(
    st.text(max_size=8),
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False,
        allow_infinity=False) | st.text(max_size=8) | st.lists(st.integers(), max_size=3),
    max_size=4,
)  # fmt: skip
times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2105, 12, 30), timezones=st.just(UTC)
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    return Event(
        message_id=draw(st.text(min_size=1, max_size=12)), project_id=draw(st.integers(1, 9)),
        dialect="segment", type=draw(st.sampled_from(["track", "page", "identify"])),
        event=draw(st.none() | st.text(max_size=10)), user_id=draw(st.none() | st.text()),
        timestamp=draw(times), received_at=draw(times), sent_at=draw(st.none() | times),
        value=draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
        bot=draw(st.booleans()), properties=draw(members), traits=draw(members),
        context=draw(members), integrations=draw(members), ip=draw(st.none() | st.just("1.2.3.4")),
    )  # fmt: skip


def _parsed(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(events(), min_size=1, max_size=5), first=st.integers(1, 10**6))
def test_the_fast_rows_are_the_forgiving_rows(batch: list[Event], first: int) -> None:
    blob = _encode(batch)
    keep = lambda offset: offset != first + 1  # noqa: E731 - one already loaded
    fast, slow = list(_fast(first, blob, keep)), list(_slow(first, blob, keep))
    assert _parsed(fast) == _parsed(slow)
    assert [r["log_offset"] for r in _parsed(fast)] == [
        first + i for i in range(len(batch)) if i != 1
    ]


def test_times_are_utc_seconds_whatever_the_log_holds() -> None:
    """Stored in UTC (cut), with an offset or none (older Roosts: converted), out of range
    (clamped, so a load never wedges)."""
    event = {"message_id": "m", "project_id": 1, "dialect": "segment", "type": "track",
             "timestamp": "2026-03-15T14:30:00.999Z", "received_at": "2026-03-15T14:30:00+05:00",
             "sent_at": "2026-03-15T14:30:00", "original_timestamp": "0001-01-01T00:00:00Z"}  # fmt: skip
    [row] = _parsed(rows([Group(7, 1, _encode([event]))], lambda _: True))
    assert row["timestamp"] == "2026-03-15 14:30:00"
    assert row["received_at"] == "2026-03-15 09:30:00"
    assert row["sent_at"] == "2026-03-15 14:30:00"
    assert row["original_timestamp"] == "1970-01-01 00:00:00"
    local = datetime(2026, 3, 15, 14, 30, tzinfo=timezone(timedelta(hours=-3)))
    assert _parsed(rows([Group(1, 1, _encode([{**event, "timestamp": local}]))],
                        lambda _: True))[0]["timestamp"] == "2026-03-15 17:30:00"  # fmt: skip


def test_a_group_in_another_shape_loads_the_forgiving_way() -> None:
    """A user id stored as a number (not what Event holds) fails the typed decode: the whole
    group goes event by event, and every event of it is there once."""
    good = {"message_id": "a", "project_id": 1, "dialect": "game", "type": "track",
            "timestamp": "2026-01-01T00:00:00Z", "received_at": "2026-01-01T00:00:00Z",
            "properties": {"n": 1, "ok": True}, "traits": None}  # fmt: skip
    odd = {**good, "message_id": "b", "user_id": 42}
    made = _parsed(rows([Group(1, 2, _encode([good, odd]))], lambda _: True))
    assert [r["message_id"] for r in made] == ["a", "b"]
    assert made[0]["properties_keys"] == ["n", "ok"]
    assert made[0]["properties_values"] == ["1", "true"]
    assert made[0]["traits"] == "{}" and made[1]["user_id"] == 42
