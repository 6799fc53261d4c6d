"""JWT bearer tokens, as the web document offers beside API keys: HS256 with a project's
jwt-secret, `site_id` and `exp` checked; anything else refused naming what is wrong."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.conftest import Env

PAGE = {"site_id": "default", "url": "https://example.com/pricing"}


def token(secret: str, **claims: Any) -> str:
    return jwt.encode({"site_id": "default", "exp": int(time.time()) + 60, **claims}, secret)


def pageview(env: Env, bearer: str, body: dict[str, Any] = PAGE) -> Any:
    return env.client.post(
        "/api/v1/events/pageview", json=body, headers={"Authorization": f"Bearer {bearer}"}
    )


def test_a_signed_token_writes_for_its_site(env: Env) -> None:
    key, secret = env.runtime.metadata.create_key("default", "jwt-secret", label="backend")
    answer = pageview(env, token(secret))
    assert answer.status_code == 201, answer.text
    custom = env.client.post(
        "/api/v1/events/custom",
        json={**PAGE, "event_name": "signup"},
        headers={"Authorization": f"Bearer {token(secret, kid=key.id)}"},
    )
    assert custom.status_code == 201, custom.text
    assert env.sql("select type, event from events order by type") == [
        {"type": "page", "event": None}, {"type": "track", "event": "signup"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("claims", "status", "words"),
    [
        ({"exp": int(time.time()) - 120}, 401, "expired"),
        ({"exp": None}, 401, "exp"),
        ({"site_id": "elsewhere"}, 401, "elsewhere"),
    ],
)
def test_a_bad_token_is_refused_naming_why(
    env: Env, claims: dict[str, Any], status: int, words: str
) -> None:
    _, secret = env.runtime.metadata.create_key("default", "jwt-secret")
    made = {"site_id": "default", "exp": int(time.time()) + 60, **claims}
    answer = pageview(env, jwt.encode({k: v for k, v in made.items() if v is not None}, secret))
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]["message"]


def test_only_the_projects_own_live_secret_signs(env: Env) -> None:
    key, secret = env.runtime.metadata.create_key("default", "jwt-secret")
    forged = pageview(env, token("not-the-secret-but-long-enough-for-hs256"))
    assert forged.status_code == 401 and "signature" in forged.json()["error"]["message"]
    unsigned = jwt.encode({"site_id": "default", "exp": int(time.time()) + 60}, None, "none")
    assert pageview(env, unsigned).status_code == 401
    assert pageview(env, secret).status_code == 401  # the secret is no write key itself
    other_site = pageview(env, token(secret), {**PAGE, "site_id": "other"})
    assert other_site.status_code == 400 and other_site.json()["error"]["field"] == "site_id"
    good = token(secret)
    assert pageview(env, good).status_code == 201
    env.runtime.metadata.revoke_key(key.id)
    env.runtime.keys._cache.clear()  # as after key_cache_seconds
    env.runtime.keys._secrets.clear()
    assert pageview(env, token(secret)).status_code == 401
    assert env.sql("select count(*) as n from events") == [{"n": 1}]
