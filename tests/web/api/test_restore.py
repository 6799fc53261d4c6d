"""`POST /api/v1/restore` takes Roost's own export back as it was stored, with an admin key
only: a write key sits in browsers, and a restore passes the tracking plan, consent and
transformations by."""

from __future__ import annotations

import json

from tests.conftest import Env


def _exported(env: Env) -> list[dict[str, object]]:
    response = env.client.get(
        "/api/v1/export?format=ndjson", headers={"Authorization": f"Bearer {env.read_key}"}
    )
    return [json.loads(line) for line in response.text.splitlines()]


def test_a_write_key_cannot_restore(env: Env) -> None:
    env.client.post(
        "/v1/track", json={"userId": "u", "event": "E", "messageId": "m1"},
        headers={"X-Write-Key": env.write_key},
    )  # fmt: skip
    rows = _exported(env)
    forged = dict(rows[0], message_id="forged", bot=False, country="XX")
    response = env.client.post(
        "/api/v1/restore", json={"events": [forged]}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 401
    assert "admin key" in response.json()["message"]
    assert [r["message_id"] for r in _exported(env)] == ["m1"]


def test_an_admin_key_restores_rows_as_they_were_stored(env: Env) -> None:
    env.client.post(
        "/v1/track",
        json={"userId": "u", "event": "E", "messageId": "m1",
              "timestamp": "2025-03-15T14:30:00+05:00", "properties": {"a": [1, {"b": None}]}},
        headers={"X-Write-Key": env.write_key},
    )  # fmt: skip
    [row] = _exported(env)
    other = env.runtime.metadata.create_project(1, "copy")
    _, admin = env.runtime.metadata.create_key(other.slug, "admin")
    _, read = env.runtime.metadata.create_key(other.slug, "read")
    for _ in range(2):  # the second time: deduplicated
        response = env.client.post(
            "/api/v1/restore", json={"events": [row]}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    copied = env.client.get(
        "/api/v1/export?format=ndjson", headers={"Authorization": f"Bearer {read}"}
    )
    assert [json.loads(line) for line in copied.text.splitlines()] == [row]


def test_a_bad_row_is_refused_alone_naming_its_field(env: Env) -> None:
    _, admin = env.runtime.metadata.create_key("default", "admin")
    good = {"message_id": "ok", "dialect": "segment", "type": "track", "event": "E",
            "timestamp": "2025-01-01T00:00:00Z", "received_at": "2025-01-01T00:00:01Z"}  # fmt: skip
    bad = dict(good, message_id="bad", timestamp="yesterday")
    response = env.client.post(
        "/api/v1/restore", json={"events": [good, bad]},
        headers={"Authorization": f"Bearer {admin}"},
    )  # fmt: skip
    body = response.json()
    assert response.status_code == 200 and body["accepted"] == 1, body
    assert body["errors"][0]["field"] == "events[1].timestamp"
