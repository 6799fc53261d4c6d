"""Dedup by messageId per project within the window, surviving a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from roost.pipeline.dedup import DedupIndex
from tests.conftest import make_settings, open_env


def test_index_window_and_release() -> None:
    index = DedupIndex(timedelta(days=7))
    now = datetime(2026, 1, 10, tzinfo=UTC).timestamp()
    assert index.reserve(1, "m", now)
    assert not index.reserve(1, "m", now + 10)
    assert index.reserve(2, "m", now)  # another project
    assert index.reserve(1, "m", now + 8 * 86400)  # outside the window
    index.release([(1, "m")])
    assert index.reserve(1, "m", now)
    index.expire(now + 30 * 86400)
    assert len(index) == 0


def test_expiry_drops_whole_minutes_but_not_ids_taken_again() -> None:
    index = DedupIndex(timedelta(days=1))
    start = datetime(2026, 1, 10, tzinfo=UTC).timestamp()
    assert index.reserve(1, "early", start)
    assert index.reserve(1, "again", start)
    assert index.reserve(1, "late", start + 3600)
    assert index.reserve(1, "again", start + 86400 + 120)  # past the window: new again
    index.expire(start + 86400 + 180)
    assert not index.reserve(1, "again", start + 86400 + 200)  # its newer minute stays
    assert index.reserve(1, "early", start + 86400 + 200)  # expired with its minute
    assert not index.reserve(1, "late", start + 86400 + 200)  # within a day of its minute
    assert len(index) == 3


def test_expiry_spreads_a_large_minute_over_requests() -> None:
    index = DedupIndex(timedelta(hours=1))
    start = datetime(2026, 1, 10, tzinfo=UTC).timestamp()
    for n in range(25):
        assert index.reserve(1, f"m{n}", start)
    assert index.reserve(1, "m3", start + 3700)  # taken again in a later minute
    later = start + 7200
    index.expire(later, budget=10)
    assert len(index) == 16  # ten dropped; the rest waits for the next requests
    assert index.reserve(1, "m20", later)  # not dropped yet, but past its window all the same
    index.expire(later, budget=10)
    index.expire(later, budget=10)
    assert sorted(index.projects[1]) == ["m20", "m3"]  # both taken again: kept


def test_a_clock_stepping_back_keeps_ids_in_the_newest_minute() -> None:
    index = DedupIndex(timedelta(hours=1))
    now = datetime(2026, 1, 10, tzinfo=UTC).timestamp()
    assert index.reserve(1, "a", now)
    assert index.reserve(1, "b", now - 600)  # the server's clock moved back ten minutes
    index.expire(now + 3600 - 300)  # b's own time is past the window; its minute is not
    assert not index.reserve(1, "b", now)


def test_duplicate_is_acknowledged_not_stored_and_survives_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    body = {"userId": "u", "event": "E", "messageId": "once"}
    for env in open_env(settings):
        headers = {"X-Write-Key": env.write_key}
        assert env.client.post("/v1/track", json=body, headers=headers).json() == {"success": True}
        assert env.client.post("/v1/track", json=body, headers=headers).json() == {"success": True}
        project = env.runtime.metadata.create_project(1, "p2")
        _, other = env.runtime.metadata.create_key(project.slug, "write")
        _, other_read = env.runtime.metadata.create_key(project.slug, "read")
        assert (
            env.client.post("/v1/track", json=body, headers={"X-Write-Key": other}).status_code
            == 200
        )
        assert env.sql("select count(*) as n from events", key=other_read) == [{"n": 1}]
        assert env.sql("select count(*) as n from events") == [{"n": 1}]
    for env in open_env(settings):
        headers = {"X-Write-Key": env.write_key}
        batch = {
            "batch": [
                {"type": "track", "userId": "u", "event": "E", "messageId": "once"},
                {"type": "track", "userId": "u", "event": "E", "messageId": "new"},
            ]
        }
        response = env.client.post("/v1/batch", json=batch, headers=headers).json()
        response.pop("warnings", None)  # what drift says is not what this test is about
        assert response == {"received": 2, "accepted": 2, "rejected": 0, "errors": []}
        rows = env.sql("select message_id from events order by log_offset")
        assert [r["message_id"] for r in rows] == ["once", "new"]


def test_copies_within_one_batch_are_stored_once(tmp_path: Path) -> None:
    for env in open_env(make_settings(tmp_path)):
        headers = {"X-Write-Key": env.write_key}
        first = {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "old"}]}
        env.client.post("/v1/batch", json=first, headers=headers)
        calls = ["a", "a", "old", "b", "a", "b"]
        batch = {
            "batch": [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in calls]
        }
        answer = env.client.post("/v1/batch", json=batch, headers=headers).json()
        assert answer["accepted"] == 6 and answer["rejected"] == 0  # duplicates are acked
        rows = env.sql("select message_id from events order by log_offset")
        assert [r["message_id"] for r in rows] == ["old", "a", "b"]


def test_the_index_holds_at_most_max_ids_dropping_the_oldest_minutes_first() -> None:
    """Every id of the window costs memory (~125 bytes): a busy project's week would be
    gigabytes. Past `max_ids` the oldest minutes go early, and the index says how far back
    it still remembers."""
    told: list[float] = []
    index = DedupIndex(timedelta(days=7), max_ids=10, forgetting=told.append)
    start = datetime(2026, 1, 10, tzinfo=UTC).timestamp()
    for minute in range(4):
        for n in range(4):
            assert index.reserve(1, f"m{minute}-{n}", start + minute * 60)
    assert index.remembers_since(start + 240) == start + 240 - 7 * 86400  # the whole window
    index.expire(start + 240)
    assert index.held <= 10 and len(index) == index.held == 8  # two whole minutes went
    assert index.reserve(1, "m0-0", start + 240)  # forgotten early: new again
    assert not index.reserve(1, "m3-3", start + 240)  # still within what is kept
    assert index.remembers_since(start + 240) == start + 120
    assert told == [180.0]  # once (at most hourly): ids now go after three minutes
    many = DedupIndex(timedelta(days=7), max_ids=10)
    for n in range(30):  # one minute alone over the bound: the newest minute is kept
        assert many.reserve(1, f"n{n}", start)
    many.expire(start + 30)
    assert len(many) == 30 and not many.reserve(1, "n0", start + 30)


def test_the_index_loads_only_the_newest_ids_it_can_hold() -> None:
    index = DedupIndex(timedelta(days=7), max_ids=5)
    start = datetime(2026, 1, 10, tzinfo=UTC)
    rows = [(1, f"m{n}", start + timedelta(minutes=n)) for n in range(12)]
    assert index.load(rows) == 5
    assert set(index.projects[1]) == {f"m{n}" for n in range(7, 12)}


def test_ids_roost_made_are_not_remembered(tmp_path: Path) -> None:
    """An event sent without a messageId gets one Roost makes, unique by construction: "no
    deduplication for those events" (seed 003), so the index spends nothing on it."""
    for env in open_env(make_settings(tmp_path)):
        headers = {"X-Write-Key": env.write_key}
        calls = [{"type": "track", "userId": "u", "event": "E"}] * 3
        calls.append({"type": "track", "userId": "u", "event": "E", "messageId": "theirs"})
        sent = env.client.post("/v1/batch", json={"batch": calls}, headers=headers).json()
        assert sent["accepted"] == 4
        assert env.runtime.dedup.held == 1 and set(env.runtime.dedup.projects[1]) == {"theirs"}
        again = env.client.post("/v1/batch", json={"batch": calls}, headers=headers).json()
        assert again["accepted"] == 4  # three new events, and "theirs" acknowledged again
        assert env.sql("select count(*) as n from events") == [{"n": 7}]
