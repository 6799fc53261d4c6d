"""Erasure: a user's events (every linked id), profile and memberships gone from the
Warehouse, the Log and the profiles, recorded; a time range likewise; nothing comes back
through a rebuild or a forwarder's replay."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

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
