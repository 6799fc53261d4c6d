"""Every time a client sends is stored at the instant it names, in UTC, whatever its offset,
and reads back the same through SQL and export; Segment's explicit `timestamp` is kept as
sent, and a `sentAt` that would move an event absurdly far is ignored and noted."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Env, fresh_postgres_url

PLAYER = "p" * 32
WHOLE_SECONDS = os.environ.get("ROOST_TEST_WAREHOUSE") == "clickhouse"


def _send_segment(env: Env, message_id: str, **times: str) -> None:
    event = {"type": "track", "event": "Timed", "userId": "u1", "messageId": message_id, **times}
    response = env.client.post("/v1/track", json=event, headers={"X-Write-Key": env.write_key})
    assert response.status_code == 200, response.text


def _send_game(env: Env, event_id: str, ts: str) -> dict[str, Any]:
    event = {
        "build_version": "1.0", "session_id": str(uuid.uuid4()), "player_hash": PLAYER,
        "ts": ts, "type": "design", "name": "timed", "event_id": event_id,
    }  # fmt: skip
    response = env.client.post(
        "/api/v1/events", json={"events": [event]}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _send_freeform(env: Env, name: str, timestamp: str) -> None:
    response = env.client.post(
        "/post",
        json={"event_name": name, "timestamp": timestamp},
        headers={"X-Write-Key": env.write_key},
    )
    assert response.status_code == 200, response.text


def _stored(env: Env, where: str) -> dict[str, Any]:
    rows = env.sql(
        f"select timestamp, original_timestamp, sent_at, context from events where {where}"
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_an_offset_is_applied_in_every_dialect(env: Env) -> None:
    _send_segment(env, "seg", timestamp="2025-03-15T14:30:00+05:00")
    _send_game(env, "game-1", "2025-03-15T14:30:00+05:00")
    _send_freeform(env, "ff", "2025-03-15T14:30:00+05:00")
    for where in ("message_id = 'seg'", "message_id = 'game-1'", "event = 'ff'"):
        assert _stored(env, where)["timestamp"] == "2025-03-15T09:30:00", where


def test_a_date_alone_is_midnight_utc(env: Env) -> None:
    assert _send_game(env, "day", "2026-11-29")["accepted"] == 1
    assert _stored(env, "message_id = 'day'")["timestamp"] == "2026-11-29T00:00:00"


def test_a_time_beyond_year_9999_in_utc_is_refused_by_name(env: Env) -> None:
    body = _send_game(env, "late", "9999-12-31T23:00:00-05:00")
    assert body["accepted"] == 0
    assert body["errors"][0]["field"] == "events[0].ts"
    assert "2105-12-31" in body["errors"][0]["message"]


def test_an_explicit_timestamp_is_kept_beside_original_and_sent_at(env: Env) -> None:
    """rudder-sdk-node sends all three: timestamp is the event's time, uncorrected."""
    _send_segment(
        env,
        "rudder",
        timestamp="2025-03-15T10:00:00Z",
        originalTimestamp="2025-03-15T11:00:00+02:00",
        sentAt="2025-03-15T11:00:05+02:00",
    )
    row = _stored(env, "message_id = 'rudder'")
    assert row["timestamp"] == "2025-03-15T10:00:00"
    assert row["original_timestamp"] == "2025-03-15T09:00:00"
    assert row["sent_at"] == "2025-03-15T09:00:05"


def test_skew_is_corrected_from_original_timestamp_and_sent_at(env: Env) -> None:
    device = datetime.now(UTC) + timedelta(hours=3)  # a device three hours fast
    _send_segment(
        env,
        "skew",
        originalTimestamp=device.isoformat(),
        sentAt=(device + timedelta(seconds=30)).isoformat(),
    )
    stored = datetime.fromisoformat(_stored(env, "message_id = 'skew'")["timestamp"])
    expected = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=30)
    assert abs(stored - expected) < timedelta(seconds=10)


def test_an_absurd_sent_at_is_ignored_and_noted(env: Env) -> None:
    _send_segment(
        env,
        "year1",
        originalTimestamp="2025-03-15T10:00:00Z",
        sentAt="0001-01-01T00:00:00Z",
    )
    row = _stored(env, "message_id = 'year1'")
    assert row["timestamp"] == "2025-03-15T10:00:00"  # not year 4052
    note = json.loads(row["context"])["roost"]["clock"]
    assert "sentAt" in note and "ignored" in note


def test_a_skew_beyond_the_configured_bound_is_ignored(env: Env) -> None:
    sent = (datetime.now(UTC) - timedelta(days=400)).replace(microsecond=0)
    original = sent - timedelta(seconds=5)
    _send_segment(env, "old", originalTimestamp=original.isoformat(), sentAt=sent.isoformat())
    row = _stored(env, "message_id = 'old'")
    assert datetime.fromisoformat(row["timestamp"]) == original.replace(tzinfo=None)
    assert "more than 365 days" in json.loads(row["context"])["roost"]["clock"]


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.just(UTC),
    # ClickHouse 18 keeps whole seconds (DateTime); DuckDB keeps what clients send (ms)
).map(lambda t: t.replace(microsecond=0 if WHOLE_SECONDS else t.microsecond // 1000 * 1000))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(instant=instants, offset=offsets)
def test_any_offset_round_trips_to_the_same_instant(
    env: Env, instant: datetime, offset: timezone
) -> None:
    """Through every dialect that carries a time, then SQL, export and the PostgreSQL
    destination."""
    destination = _postgres_destination(env)
    sent = instant.astimezone(offset).isoformat()
    tag = uuid.uuid4().hex
    _send_segment(env, f"s-{tag}", timestamp=sent)
    _send_game(env, f"g-{tag}", sent)
    _send_freeform(env, f"f-{tag}", sent)
    expected = instant.replace(tzinfo=None).isoformat()
    rows = env.sql(
        f"select message_id, event, timestamp from events where message_id like '%{tag}' "
        f"or event = 'f-{tag}'"
    )
    assert len(rows) == 3 and {r["timestamp"] for r in rows} == {expected}, (sent, rows)
    exported = env.client.get(
        "/api/v1/export?format=ndjson", headers={"Authorization": f"Bearer {env.read_key}"}
    )
    mine = [json.loads(line) for line in exported.text.splitlines() if tag in line]
    assert len(mine) == 3
    for row in mine:
        assert datetime.fromisoformat(row["timestamp"]) == instant, (sent, row["timestamp"])
    delivered: list[Any] = []
    deadline = time.monotonic() + 15
    while len(delivered) < 3 and time.monotonic() < deadline:
        # the first delivery may not have made the table yet
        with (
            psycopg.connect(destination) as conn,
            contextlib.suppress(psycopg.errors.UndefinedTable),
        ):
            delivered = conn.execute(
                'select "timestamp" from roost.tracks where id like %s or event_text = %s',
                (f"%{tag}", f"f-{tag}"),
            ).fetchall()
        time.sleep(0.05)
    assert [r[0] for r in delivered] == [instant] * 3, (sent, delivered)


def _postgres_destination(env: Env) -> str:
    """A PostgreSQL destination on a database of its own, made once per test (its DSN)."""
    dsn: str | None = getattr(env, "pg_destination", None)
    if dsn is None:
        dsn = fresh_postgres_url().replace("postgresql+psycopg://", "postgresql://")
        _, admin = env.runtime.metadata.create_key("default", "admin")
        made = env.client.request(
            "PUT", "/api/v1/admin/destinations/pg",
            json={"kind": "postgres", "dsn": dsn, "batch_seconds": 0.05},
            headers={"Authorization": f"Bearer {admin}"},
        )  # fmt: skip
        assert made.status_code == 200, made.text
        env.pg_destination = dsn  # type: ignore[attr-defined]
    return dsn
