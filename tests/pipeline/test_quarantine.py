"""Quarantine and replay: what a tracking plan blocks is kept with why; once the plan is fixed
one action runs it through the pipeline again — what passes is stored once, with its own
messageId and times, the rest stays with its new reason; erasure reaches it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import Env

ORDER = {
    "type": "object",
    "properties": {"revenue": {"type": "number"}},
    "required": ["revenue"],
}


def naive(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def plan(env: Env, schema: dict[str, Any]) -> None:
    env.runtime.contract_store.set(1, "Order Completed", schema, "block")
    env.runtime.contracts.plan.forget()  # as if the cache had expired


def held(env: Env) -> dict[str, Any]:
    response = env.client.get("/api/v1/quarantine", headers={"X-Write-Key": env.read_key})
    assert response.status_code == 200, response.text
    return dict(response.json())


def replay(env: Env) -> dict[str, Any]:
    _, admin = env.runtime.metadata.create_key("default", "admin")
    response = env.client.post("/api/v1/quarantine/replay",
                               headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_blocked_events_wait_and_are_stored_once_the_plan_is_fixed(env: Env) -> None:
    plan(env, ORDER)
    batch = [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "bad-1",
         "properties": {"revenue": "12"}, "timestamp": "2026-03-01T10:00:00Z"},
        {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "bad-2",
         "properties": {"total": 5}, "timestamp": "2026-03-01T11:00:00Z"},
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "good",
         "properties": {"revenue": 3}},
    ]  # fmt: skip
    sent = env.client.post(
        "/v1/batch", json={"batch": batch}, headers={"X-Write-Key": env.write_key}
    )
    assert sent.json()["rejected"] == 2
    waiting = held(env)
    assert waiting["count"] == 2
    assert [(e["message_id"], e["field"]) for e in waiting["events"]] == [
        ("bad-1", "batch[0].properties.revenue"), ("bad-2", "batch[1].properties")
    ]  # fmt: skip
    received = {e["message_id"]: e["received_at"] for e in waiting["events"]}
    # the plan is fixed for one of them: revenue may be a string too
    plan(env, {**ORDER, "properties": {"revenue": {"type": ["number", "string"]}}})
    assert replay(env) == {"stored": 1, "still_held": 1}
    rows = env.sql("SELECT message_id, timestamp, received_at FROM events ORDER BY message_id")
    assert [r["message_id"] for r in rows] == ["bad-1", "good"]
    assert (
        str(rows[0]["timestamp"]).startswith("2026-03-01")
        and str(rows[0]["timestamp"])[11:13] == "10"
    )
    assert (
        str(rows[0]["received_at"])[:19] == received["bad-1"][:19].replace("T", " ")
        or str(rows[0]["received_at"])[:19] == received["bad-1"][:19]
    )
    left = held(env)
    assert [e["message_id"] for e in left["events"]] == ["bad-2"]
    assert "required" in left["events"][0]["message"]
    # a second replay stores nothing twice
    assert replay(env) == {"stored": 0, "still_held": 1}
    assert len(env.sql("SELECT message_id FROM events WHERE message_id = 'bad-1'")) == 1


def test_an_erased_user_leaves_the_quarantine(env: Env) -> None:
    plan(env, ORDER)
    for user in ("u1", "u2"):
        env.client.post("/v1/track", json={"userId": user, "event": "Order Completed"},
                        headers={"X-Write-Key": env.write_key})  # fmt: skip
    assert held(env)["count"] == 2
    _, delete_key = env.runtime.metadata.create_key("default", "delete")
    erased = env.client.request("DELETE", "/api/v1/users/u1",
                                headers={"Authorization": f"Bearer {delete_key}"})  # fmt: skip
    assert erased.status_code == 200, erased.text
    assert [e["message_id"] for e in held(env)["events"]] != [] and held(env)["count"] == 1


def test_a_blocked_copy_of_a_stored_event_does_not_let_it_be_stored_twice(env: Env) -> None:
    """Stored once, then a copy the plan blocks (held, 422), then a good copy again: still
    one stored — holding the blocked copy must not forget the stored one's messageId."""
    headers = {"X-Write-Key": env.write_key}
    good = {"userId": "u", "event": "Order Completed", "messageId": "dup",
            "properties": {"revenue": 1}}  # fmt: skip
    assert env.client.post("/v1/track", json=good, headers=headers).status_code == 200
    plan(env, ORDER)
    bad = {**good, "properties": {}}
    assert env.client.post("/v1/track", json=bad, headers=headers).status_code == 422
    assert held(env)["count"] == 1
    assert env.client.post("/v1/track", json=good, headers=headers).status_code == 200
    rows = env.sql("SELECT message_id FROM events WHERE message_id = 'dup'")
    assert len(rows) == 1
