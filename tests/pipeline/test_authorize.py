"""Keys: kinds, allowed types, revocation within a second, one project's key on another's site."""

from __future__ import annotations

import time

from tests.conftest import Env


def test_read_key_cannot_write(env: Env) -> None:
    for path, body in [
        ("/v1/track", {"userId": "u", "event": "E"}),
        ("/api/v1/events/pageview", {"site_id": "default", "url": "https://a.example/"}),
        ("/post", {"event_name": "E"}),
    ]:
        response = env.client.post(
            path, json=body, headers={"Authorization": f"Bearer {env.read_key}"}
        )
        assert response.status_code == 401
        assert "Please use a write key for write requests." in response.text
    assert env.sql("select count(*) as n from events") == [{"n": 0}]


def test_allowed_types_refuse_others_with_403(env: Env) -> None:
    _, key = env.runtime.metadata.create_key("default", "write", allowed_types=["track", "page"])
    headers = {"X-Write-Key": key}
    assert (
        env.client.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers=headers
        ).status_code
        == 200
    )
    response = env.client.post("/v1/identify", json={"userId": "u"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["field"] == "type"
    batch = {
        "batch": [{"type": "identify", "userId": "u"}, {"type": "page", "userId": "u", "name": "P"}]
    }
    body = env.client.post("/v1/batch", json=batch, headers=headers).json()
    assert body["accepted"] == 1
    assert body["errors"] == [
        {
            "index": 0,
            "code": "forbidden",
            "field": "batch[0].type",
            "message": "batch[0].type: this key may not send identify events (allowed: track, page)",
        }
    ]


def test_revoked_key_is_refused_within_a_second(env: Env) -> None:
    key, raw = env.runtime.metadata.create_key("default", "write")
    headers = {"X-Write-Key": raw}
    assert (
        env.client.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers=headers
        ).status_code
        == 200
    )
    env.runtime.metadata.revoke_key(key.id)  # as `roost keys revoke` would, from another process
    time.sleep(env.settings.key_cache_seconds + 0.05)
    response = env.client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=headers)
    assert response.status_code == 401
    assert env.sql("select count(*) as n from events") == [{"n": 1}]


def test_key_of_one_project_cannot_write_to_another_site(env: Env) -> None:
    env.runtime.metadata.create_project(1, "other-site")
    body = {"site_id": "other-site", "url": "https://other.example/"}
    response = env.client.post(
        "/api/v1/events/pageview", json=body, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_site_id"
    assert env.sql("select count(*) as n from events") == [{"n": 0}]


def test_events_go_to_the_keys_project(env: Env) -> None:
    project = env.runtime.metadata.create_project(1, "second")
    _, write = env.runtime.metadata.create_key(project.slug, "write")
    _, read = env.runtime.metadata.create_key(project.slug, "read")
    env.client.post(
        "/v1/track", json={"userId": "u", "event": "Mine"}, headers={"X-Write-Key": write}
    )
    env.client.post(
        "/v1/track", json={"userId": "u", "event": "Theirs"}, headers={"X-Write-Key": env.write_key}
    )
    assert env.sql("select event from events", key=read) == [{"event": "Mine"}]
    assert env.sql("select event from events") == [{"event": "Theirs"}]
