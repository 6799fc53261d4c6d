"""Erasure: a user's events (every linked id), profile and memberships gone from the
Warehouse, the Log and the profiles, recorded; a time range likewise; nothing comes back
through a rebuild or a forwarder's replay."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from roost.storage.metadata.erasures import ErasureStore
from tests import conftest
from tests.conftest import Env
from tests.integration.receiver import Receiver


def send(env: Env, events: list[dict[str, Any]]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": events}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def delete_key(env: Env) -> dict[str, str]:
    _, raw = env.runtime.metadata.create_key("default", "delete")
    return {"Authorization": f"Bearer {raw}"}


def log_blobs(env: Env) -> bytes:
    path = env.runtime.settings.resolved_log_url().removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return b"".join(row[0] for row in conn.execute("SELECT events FROM log"))


def count(env: Env, where: str = "1 = 1") -> int:
    return int(env.sql(f"select count(*) as n from events where {where}")[0]["n"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def test_a_user_is_erased_everywhere_with_every_linked_id(env: Env, receiver: Receiver) -> None:
    send(env, [
        {"type": "track", "anonymousId": "a1", "event": "View", "messageId": "m1"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m2",
         "traits": {"email": "ada@example.com"}},
        {"type": "track", "userId": "u1", "event": "Buy", "messageId": "m3"},
        {"type": "alias", "previousId": "old-1", "userId": "u1", "messageId": "m4"},
        {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "m5"},
        {"type": "track", "userId": "u2", "event": "View", "messageId": "m6",
         "properties": {"note": "keep me"}},
    ])  # fmt: skip
    read = {"Authorization": f"Bearer {env.read_key}"}
    assert env.client.get("/api/v1/profiles/u1", headers=read).status_code == 200
    deleting = delete_key(env)

    for refused in (read, {"X-Write-Key": env.write_key}):
        assert env.client.request("DELETE", "/api/v1/users/u1", headers=refused).status_code == 403
    answer = env.client.request("DELETE", "/api/v1/users/u1", headers=deleting)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["ids"], body["events"], body["log_events"]) == (["a1", "old-1", "u1"], 5, 5)

    assert count(env) == 1 and env.sql("select user_id from events") == [{"user_id": "u2"}]
    for who in ("u1", "a1", "old-1"):
        assert env.client.get(f"/api/v1/profiles/{who}", headers=read).status_code == 404
    blobs = log_blobs(env)
    for trace in (b'"u1"', b'"a1"', b'"old-1"', b"ada@example.com", b'"g1"'):
        assert trace not in blobs
    assert b"keep me" in blobs

    env.runtime.profiles.rebuild()  # the Log no longer holds what made the profile
    assert env.client.get("/api/v1/profiles/u1", headers=read).status_code == 404

    made = env.client.request(
        "PUT", "/api/v1/admin/destinations/hook",
        json={"kind": "webhook", "url": receiver.url, "batch_seconds": 0.05},
        headers={"Authorization": f"Bearer {env.runtime.metadata.create_key('default', 'admin')[1]}"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    admin = {"Authorization": f"Bearer {env.runtime.metadata.create_key('default', 'admin')[1]}"}
    env.client.post(
        "/api/v1/admin/destinations/hook/replay", json={"from_offset": 1}, headers=admin
    )
    assert [e["messageId"] for e in receiver.wait_for(1)] == ["m6"]  # a replay sends no ghost

    records = env.client.get("/api/v1/erasures", headers=deleting).json()["erasures"]
    assert [(r["user_id"], r["ids"], r["events"]) for r in records] == [
        ("u1", ["a1", "old-1", "u1"], 5)
    ]


def test_a_time_range_is_erased(env: Env) -> None:
    send(env, [
        {"type": "track", "userId": "u", "event": "E", "messageId": f"d{day}",
         "timestamp": f"2024-01-0{day}T12:00:00Z", "properties": {"marker": f"day-{day}"}}
        for day in (1, 2, 3)
    ])  # fmt: skip
    deleting = delete_key(env)
    answer = env.client.post(
        "/api/v1/erasures",
        json={"since": "2024-01-02T00:00:00Z", "until": "2024-01-03T00:00:00+00:00"},
        headers=deleting,
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["events"], answer.json()["log_events"]) == (1, 1)
    assert [r["message_id"] for r in env.sql("select message_id from events order by 1")] == [
        "d1", "d3",
    ]  # fmt: skip
    blobs = log_blobs(env)
    assert b"day-2" not in blobs and b"day-1" in blobs and b"day-3" in blobs


@pytest.mark.parametrize(
    "body, field",
    [
        ({"until": "2024-01-03T00:00:00Z"}, "since"),
        ({"since": "yesterday", "until": "2024-01-03T00:00:00Z"}, "since"),
        ({"since": "2024-01-02T00:00:00", "until": "2024-01-03T00:00:00Z"}, "since"),
        ({"since": "2024-01-03T00:00:00Z", "until": "2024-01-02T00:00:00Z"}, "until"),
        ({"user_id": ""}, "user_id"),
        ({}, "body"),
    ],
)
def test_a_bad_erasure_is_refused(env: Env, body: dict[str, Any], field: str) -> None:
    answer = env.client.post("/api/v1/erasures", json=body, headers=delete_key(env))
    assert answer.status_code == 400 and answer.json()["error"]["field"] == field


def files_holding(roots: list[Path], needle: bytes) -> list[str]:
    """Every file under the roots whose bytes contain the needle."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and needle in path.read_bytes():
                    found.append(str(path))
            except OSError:  # a file removed while walking
                continue
    return found


def data_roots(env: Env) -> list[Path]:
    """Every directory Roost writes: its data directory, and a ClickHouse Warehouse's."""
    roots = [Path(env.settings.data)]
    if env.settings.warehouse_url.startswith("clickhouse"):
        roots.append(conftest._servers["clickhouse"].dir)
    return roots


def test_erased_values_are_gone_from_every_file_roost_writes(env: Env) -> None:
    erased = (b"erase-me-trait-7f3a9", b"erase-me-prop-91c2e", b"erase-me-page-5b7d0")
    kept = b"keep-me-prop-d41e8"
    send(env, [
        {"type": "identify", "userId": "u1", "messageId": "i1",
         "traits": {"email": erased[0].decode()}},
        *[{"type": "track", "userId": "u1", "event": "Buy", "messageId": f"t{i}",
           "properties": {"secret": erased[1].decode()},
           "context": {"page": {"url": f"https://example.com/{erased[2].decode()}"}}}
          for i in range(50)],
        {"type": "track", "userId": "u2", "event": "Buy", "messageId": "k1",
         "properties": {"secret": kept.decode()}},
    ])  # fmt: skip
    assert env.portal is not None and env.portal.call(env.runtime.caught_up, 30.0)
    roots = data_roots(env)
    for needle in (*erased, kept):
        assert files_holding(roots, needle), needle  # written somewhere, or the test means nothing
    for root in roots:
        assert files_holding([root], erased[0]), root  # the Warehouse's too (ClickHouse parts)

    answer = env.client.request("DELETE", "/api/v1/users/u1", headers=delete_key(env))
    assert answer.status_code == 200, answer.text
    assert answer.json()["on_disk_at"] is None  # gone from queries now, from disk shortly

    deadline = time.monotonic() + 180
    while True:
        record = env.client.get("/api/v1/erasures", headers=delete_key(env)).json()
        if record["erasures"][0]["on_disk_at"] is not None:
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.2)
    for needle in erased:
        assert files_holding(roots, needle) == [], needle
    assert files_holding(roots, kept)
    assert [r["message_id"] for r in env.sql("select message_id from events")] == ["k1"]
    send(env, [{"type": "track", "userId": "u3", "event": "After", "messageId": "a1"}])
    assert env.portal is not None and env.portal.call(env.runtime.caught_up, 30.0)
    assert len(env.sql("select message_id from events")) == 2  # the rewritten store goes on


def test_erased_events_leave_the_dead_letters(env: Env, receiver: Receiver) -> None:
    receiver.script.append((400, {}))  # the first batch is refused: a dead letter
    admin = {"Authorization": f"Bearer {env.runtime.metadata.create_key('default', 'admin')[1]}"}
    made = env.client.request(
        "PUT", "/api/v1/admin/destinations/hook",
        json={"kind": "webhook", "url": receiver.url, "batch_seconds": 0.2},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 200, made.text
    send(env, [
        {"type": "track", "userId": "u1", "event": "Buy", "messageId": "m1"},
        {"type": "track", "userId": "u2", "event": "Buy", "messageId": "m2"},
        {"type": "track", "userId": "u1", "event": "Buy", "messageId": "m3"},
    ])  # fmt: skip
    read = {"Authorization": f"Bearer {env.read_key}"}
    deadline = time.monotonic() + 10

    def letters() -> list[list[str]]:
        found = env.client.get("/api/v1/destinations/hook/dead-letters", headers=read).json()
        return [x["message_ids"] for x in found["dead_letters"]]

    while letters() != [["m1", "m2", "m3"]]:
        assert time.monotonic() < deadline, letters()
        time.sleep(0.05)
    deleting = delete_key(env)
    assert env.client.request("DELETE", "/api/v1/users/u1", headers=deleting).status_code == 200
    assert letters() == [["m2"]]
    assert env.client.request("DELETE", "/api/v1/users/u2", headers=deleting).status_code == 200
    assert letters() == []


def test_erasures_recorded_by_an_older_roost_are_scrubbed_too(tmp_path: Path) -> None:
    """A store made before `on_disk_at` gains the column; its erasures count as waiting."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE erasures (id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER "
            "NOT NULL, user_id VARCHAR(255), ids TEXT NOT NULL, since DATETIME, until DATETIME, "
            "events BIGINT NOT NULL, log_events BIGINT NOT NULL, key_id VARCHAR(64) NOT NULL, "
            "requested_at DATETIME NOT NULL)"
        ))  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO erasures (project_id, user_id, ids, events, log_events, key_id, "
            "requested_at) VALUES (1, 'u1', '[\"u1\"]', 3, 3, 'k', '2026-01-02 03:04:05')"
        ))  # fmt: skip
    store = ErasureStore(engine)
    assert store.list(1)[0]["on_disk_at"] is None
    ids, at = store.waiting()
    assert ids == (1,) and at == datetime(2026, 1, 2, 3, 4, 5)
    store.on_disk(ids)
    assert store.waiting() == ((), None) and store.list(1)[0]["on_disk_at"] is not None
