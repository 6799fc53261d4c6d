"""Bad input is a 400 (or one event's rejection) naming the field, never a 5xx: invalid
UTF-8 inside batch items, objects nested a thousand deep, NaN, dates at the end of time,
gzip bodies of several members or with garbage after one."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.conftest import Env

GAME_EVENT = (
    b'{"build_version":"1","session_id":"00000000-0000-0000-0000-000000000001",'
    b'"player_hash":"0123456789abcdef0123456789abcdef","ts":"2026-01-01T00:00:00Z",'
    b'"type":"design","name":"X\xff"}'
)
BAD_UTF8: list[tuple[str, bytes]] = [
    *[(path, b'{"batch":[{"type":"track","userId":"u","event":"ok"},'
             b'{"type":"track","userId":"u","event":"bad\xff"}]}')
      for path in ("/v1/batch", "/v1/import", "/v1/b", "/api/v1/events/batch")],
    ("/api/v1/events", b'{"events":[' + GAME_EVENT + b"]}"),
    ("/v1/track", b'{"userId":"u","event":"bad\xfe"}'),
    ("/api/v1/events/pageview", b'{"site_id":"default","url":"https://a.example/\xff"}'),
    ("/post", b'{"event_name":"bad\xff"}'),
]  # fmt: skip


def post(env: Env, path: str, body: bytes, **headers: str) -> Any:
    return env.client.post(
        path,
        content=body,
        headers={"Authorization": f"Bearer {env.write_key}", "Content-Type": "application/json",
                 **headers},
    )  # fmt: skip


@pytest.mark.parametrize(("path", "body"), BAD_UTF8)
def test_invalid_utf8_is_a_400_or_one_rejected_event(env: Env, path: str, body: bytes) -> None:
    answer = post(env, path, body)
    assert answer.status_code < 500, answer.text
    text = answer.text
    assert "UTF-8" in text or "utf-8" in text, text
    if path in ("/v1/batch", "/v1/import", "/v1/b", "/api/v1/events/batch"):
        assert answer.status_code == 200 and answer.json()["accepted"] == 1  # the good one stays


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", b'{"userId":"u","event":"E","properties":' + nested(1200) + b"}"),
        ("/v1/batch", b'{"batch":[{"type":"track","userId":"u","event":"E","properties":'
                      + nested(1200) + b"}]}"),
        ("/api/v1/events", b'{"events":[' + GAME_EVENT.replace(b"X\xff", b"X")[:-1]
                           + b',"data":' + nested(1200) + b"}]}"),
        ("/api/v1/events/custom", b'{"site_id":"default","url":"https://a.example/",'
                                  b'"event_name":"e","props":' + nested(1200) + b"}"),
        ("/post", b'{"event_name":"e","x":' + nested(1200) + b"}"),
    ],
)  # fmt: skip
def test_deep_nesting_is_refused_by_name(env: Env, path: str, body: bytes) -> None:
    answer = post(env, path, body)
    assert answer.status_code < 500, answer.text
    assert "deep" in answer.text or "nested" in answer.text, answer.text


def test_nan_and_infinity_are_named(env: Env) -> None:
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        answer = post(
            env, "/v1/track", b'{"userId":"u","event":"E","properties":{"v":' + token + b"}}"
        )
        assert answer.status_code == 400, answer.text
        assert "NaN" in answer.json()["message"] or "Infinity" in answer.json()["message"]


@pytest.mark.parametrize("report", ["query", "reports/funnel", "reports/retention"])
def test_a_date_range_at_the_end_of_time_is_a_400_or_an_answer(env: Env, report: str) -> None:
    body: dict[str, Any] = {"date_range": ["9999-12-30", "9999-12-31"]}
    if report == "query":
        body["metrics"] = ["events"]
    elif report == "reports/funnel":
        body["steps"] = ["A", "B"]
    else:
        body.update({"start": "A", "return": "B"})
    answer = env.client.post(
        f"/api/v1/{report}", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert answer.status_code in (200, 400), answer.text


def test_gzip_of_several_members_is_one_body_and_garbage_after_is_refused(env: Env) -> None:
    one = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "A"}, {"type": "track",
                     "userId": "u", "event": "B"}]}).encode()  # fmt: skip
    half = len(one) // 2
    members = gzip.compress(one[:half]) + gzip.compress(one[half:])
    answer = post(env, "/v1/batch", members, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    garbage = post(
        env, "/v1/batch", gzip.compress(one) + b"garbage", **{"Content-Encoding": "gzip"}
    )
    assert garbage.status_code == 400 and "gzip" in garbage.text, garbage.text


def admin_headers(env: Env) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.runtime.metadata.create_key('default', 'admin')[1]}"}


def test_api_bodies_are_bounded_in_size_and_depth(env: Env) -> None:
    headers = admin_headers(env)
    deep = env.client.request("PUT", "/api/v1/admin/config", content=nested(5000), headers=headers)
    assert deep.status_code == 400 and "deep" in deep.text, deep.text
    huge = b'{"unplanned": "' + b"x" * (env.settings.max_request_bytes + 1) + b'"}'
    big = env.client.request("PUT", "/api/v1/admin/config", content=huge, headers=headers)
    assert big.status_code == 413, big.text
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(20):  # 41 levels: within a body's 64, past a schema's 32
        schema = {"properties": {"a": schema}}
    planned = env.client.request(
        "PUT", "/api/v1/admin/config", headers=headers,
        json={"contracts": [{"target": "E", "schema": schema, "action": "block"}]},
    )  # fmt: skip
    assert planned.status_code == 400, planned.text
    assert planned.json()["error"]["field"] == "contracts[0].schema"


def test_a_long_garbage_key_is_not_kept_whole(env: Env) -> None:
    for i in range(20):
        answer = env.client.post(
            "/v1/track", json={"userId": "u", "event": "E"},
            headers={"Authorization": f"Bearer {i}{'k' * 20000}"},
        )  # fmt: skip
        assert answer.status_code == 401
    assert max(len(k) for k in env.runtime.keys._cache) <= 128


def test_yaml_nested_too_deep_is_a_400() -> None:
    from roost.errors import BadRequest
    from roost.storage.metadata.project_config import load_yaml

    with pytest.raises(BadRequest, match="nested too deep"):
        load_yaml("a: " + "[" * 5000 + "]" * 5000, "config")
