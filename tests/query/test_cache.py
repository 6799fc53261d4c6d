"""Kept answers are reused only while the Warehouse is unchanged: a load, new identity links
or an erasure makes the next ask compute again."""

from __future__ import annotations

from typing import Any

from tests.conftest import Env

QUERY = {"metrics": ["events", "users"], "date_range": "all"}


def ask(env: Env) -> list[Any]:
    response = env.client.post(
        "/api/v1/query", json=QUERY, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["results"][0]["metrics"])


def send(env: Env, *events: dict[str, Any]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": list(events)}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def test_an_unchanged_warehouse_answers_from_the_cache(env: Env) -> None:
    send(env, {"type": "track", "userId": "u1", "event": "A", "messageId": "m1"})
    assert ask(env) == [1, 1]
    hits = env.runtime.results.hits
    assert ask(env) == [1, 1]
    assert env.runtime.results.hits == hits + 1


def test_new_events_links_and_erasures_are_seen_at_once(env: Env) -> None:
    send(env, {"type": "track", "anonymousId": "anon", "event": "A", "messageId": "m1"},
         {"type": "track", "userId": "u1", "event": "A", "messageId": "m2"})  # fmt: skip
    assert ask(env) == [2, 2]
    send(env, {"type": "identify", "userId": "u1", "anonymousId": "anon", "messageId": "m3"})
    assert ask(env) == [3, 1]  # a new event, and anon is u1 now
    _, delete = env.runtime.metadata.create_key("default", "delete")
    response = env.client.request(
        "DELETE", "/api/v1/users/u1", headers={"Authorization": f"Bearer {delete}"}
    )
    assert response.status_code == 200, response.text
    assert ask(env) == [0, 0]
