"""Profiles, rule by rule, through the API; and rebuilt exactly from the Log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Env, make_settings, open_env


def send(env: Env, *batch: dict[str, Any]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": list(batch)}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def profile(env: Env, user: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    response = env.client.get(
        f"/api/v1/profiles/{user}", headers={"Authorization": f"Bearer {key or env.read_key}"}
    )
    return response.status_code, response.json()


STORY = (
    {"type": "page", "anonymousId": "anon-1", "name": "Home", "timestamp": "2026-03-01T10:00:00Z"},
    {
        "type": "track",
        "anonymousId": "anon-1",
        "event": "Viewed",
        "timestamp": "2026-03-01T10:01:00Z",
    },
    {
        "type": "identify",
        "anonymousId": "anon-1",
        "userId": "u1",
        "timestamp": "2026-03-01T10:02:00Z",
        "traits": {"email": "a@example.com", "plan": "free", "name": "Ada"},
    },
    {
        "type": "identify",
        "userId": "u1",
        "timestamp": "2026-03-01T10:03:00Z",
        "traits": {"plan": "pro", "name": None},
    },
    {
        "type": "track",
        "anonymousId": "anon-1",
        "event": "Paid",
        "timestamp": "2026-03-01T10:04:00Z",
    },
    {
        "type": "group",
        "userId": "u1",
        "groupId": "acme",
        "traits": {"name": "Acme", "tier": "gold"},
        "timestamp": "2026-03-01T10:05:00Z",
    },
    {
        "type": "group",
        "userId": "u1",
        "groupId": "beta",
        "traits": {"name": "Beta"},
        "timestamp": "2026-03-01T10:06:00Z",
    },
    {
        "type": "group",
        "userId": "u2",
        "groupId": "acme",
        "traits": {"tier": None, "seats": 5},
        "timestamp": "2026-03-01T10:07:00Z",
    },
    {"type": "track", "userId": "old-id", "event": "Legacy", "timestamp": "2026-02-01T00:00:00Z"},
    {"type": "alias", "previousId": "old-id", "userId": "u1", "timestamp": "2026-03-01T10:08:00Z"},
)

EXPECTED_U1 = {
    "user_id": "u1",
    "traits": {"email": "a@example.com", "plan": "pro"},
    "linked_ids": ["anon-1", "old-id"],
    "groups": [
        {"group_id": "acme", "traits": {"name": "Acme", "seats": 5}},
        {"group_id": "beta", "traits": {"name": "Beta"}},
    ],
    "first_seen": "2026-02-01T00:00:00+00:00",
    "last_seen": "2026-03-01T10:08:00+00:00",
    "event_count": 10 - 1,  # u2's group call is u2's
    "audiences": [],  # none defined
}


def test_profile_rules(env: Env) -> None:
    send(env, *STORY)
    status, body = profile(env, "u1")
    assert status == 200, body
    assert body == EXPECTED_U1
    assert profile(env, "anon-1")[1]["user_id"] == "u1"  # a linked id finds its user
    status, u2 = profile(env, "u2")
    assert u2["groups"] == [{"group_id": "acme", "traits": {"name": "Acme", "seats": 5}}]
    assert u2["event_count"] == 1


def test_context_traits_are_identify_traits_too(env: Env) -> None:
    """RudderStack's libraries send an identify's traits only in context.traits."""
    send(
        env,
        {"type": "identify", "userId": "r1", "context": {"traits": {"email": "r@x.io", "plan": "a"}}},
        {"type": "identify", "userId": "r1", "traits": {"plan": "b"},
         "context": {"traits": {"plan": "ignored", "seats": 3}}},
        {"type": "track", "userId": "r1", "event": "E", "context": {"traits": {"plan": "no"}}},
    )  # fmt: skip
    status, body = profile(env, "r1")
    assert status == 200, body
    assert body["traits"] == {"email": "r@x.io", "plan": "b", "seats": 3}
    stored = env.sql("select type, traits from events where user_id = 'r1' order by log_offset")
    assert [(r["type"], json.loads(r["traits"])) for r in stored] == [
        ("identify", {"email": "r@x.io", "plan": "a"}),
        ("identify", {"plan": "b", "seats": 3}),
        ("track", {}),
    ]


def test_unknown_user_and_keys(env: Env) -> None:
    assert profile(env, "nobody")[0] == 404
    assert profile(env, "nobody", key=env.write_key)[0] == 403
    assert profile(env, "nobody", key="rr_unknown")[0] == 401


def test_profiles_of_one_project_are_not_seen_from_another(env: Env) -> None:
    send(env, {"type": "identify", "userId": "u1", "traits": {"secret": 1}})
    other = env.runtime.metadata.create_project(1, "other")
    _, read = env.runtime.metadata.create_key(other.slug, "read")
    assert profile(env, "u1", key=read)[0] == 404


def test_profiles_are_rebuilt_exactly_after_restart_and_replay(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for env in open_env(settings):
        send(env, *STORY[:5])
        send(env, *STORY[5:])
        first = profile(env, "u1")[1]
        assert first == EXPECTED_U1
    for env in open_env(settings):
        assert profile(env, "u1")[1] == first  # resumed from its cursor: nothing applied twice
        applied = env.runtime.profiles.rebuild()
        assert applied == len(STORY)
        assert profile(env, "u1")[1] == first


def test_linked_events_are_attributed_to_the_user_in_sql(env: Env) -> None:
    send(env, *STORY)
    rows = env.sql(
        "select resolved_user_id as who, count(*) as n from events group by resolved_user_id order by who"
    )
    assert rows == [{"who": "u1", "n": 9}, {"who": "u2", "n": 1}]
    # a link made later re-attributes earlier events at once
    send(
        env,
        {"type": "track", "anonymousId": "anon-2", "event": "Browse"},
        {"type": "identify", "anonymousId": "anon-2", "userId": "u2"},
    )
    rows = env.sql(
        "select resolved_user_id as who, count(*) as n from events group by resolved_user_id order by who"
    )
    assert rows == [{"who": "u1", "n": 9}, {"who": "u2", "n": 3}]


def test_a_link_in_the_same_batch_moves_memberships_and_traits(env: Env) -> None:
    send(
        env,
        {"type": "group", "anonymousId": "anon-9", "groupId": "gamma", "traits": {"plan": "team"}},
        {"type": "identify", "anonymousId": "anon-9", "traits": {"color": "red"}},
        {"type": "identify", "anonymousId": "anon-9", "userId": "u9", "traits": {"size": 2}},
    )
    status, body = profile(env, "u9")
    assert status == 200
    assert body["groups"] == [{"group_id": "gamma", "traits": {"plan": "team"}}]
    assert body["traits"] == {"color": "red", "size": 2}
    assert body["linked_ids"] == ["anon-9"]
    assert body["event_count"] == 3
