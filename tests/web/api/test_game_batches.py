"""The game dialect as its document promises an SDK that retries 5xx and drops 4xx: any
batch of 1–100 events each within max_event_bytes is taken, whatever the request limit; a
rate-limited batch is a 503 to retry, never a 4xx to drop; every refusal in one shape."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from tests.conftest import Env


def game_event(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "build_version": "1.0",
        "session_id": str(uuid.uuid4()),
        "player_hash": "p" * 32,
        "ts": "2026-01-01T00:00:00Z",
        "type": "design",
        "name": f"Step:{i}",
        "event_id": f"e{i}",
        **extra,
    }


def post(env: Env, body: bytes, key: str | None = None, **headers: str) -> Any:
    return env.client.post(
        "/api/v1/events",
        content=body,
        headers={
            "Authorization": f"Bearer {key or env.write_key}",
            "Content-Type": "application/json",
            **headers,
        },
    )


def test_a_full_batch_of_large_events_is_taken_over_the_request_limit(env: Env) -> None:
    settings = env.settings
    pad = "x" * (settings.max_request_bytes // 100 + 1000)
    assert len(pad) + 1000 < settings.max_event_bytes
    events = [game_event(i, data={"pad": pad}) for i in range(100)]
    events[7]["data"] = {"pad": "y" * settings.max_event_bytes}  # this one alone is too large
    body = json.dumps({"events": events}).encode()
    assert len(body) > settings.max_request_bytes

    for sent, headers in ((body, {}), (gzip.compress(body), {"Content-Encoding": "gzip"})):
        answer = post(env, sent, **headers)
        assert answer.status_code == 200, answer.text
        reply = answer.json()
        assert (reply["accepted"], reply["rejected"]) == (99, 1)
        assert [(e["index"], e["code"]) for e in reply["errors"]] == [(7, "too_large")]
    assert env.sql("select count(*) as n from events") == [{"n": 99}]  # the retry stored once


def test_a_body_no_batch_could_fill_is_refused_in_the_batch_shape(env: Env) -> None:
    limit = 100 * env.settings.max_event_bytes + 65536
    answer = post(env, b'{"events": [' + b" " * limit + b"]}")
    assert answer.status_code == 413
    assert answer.json() == {
        "accepted": 0,
        "rejected": 1,
        "errors": [{
            "index": None,
            "field": "body",
            "message": f"body: must be at most {limit} bytes",
            "code": "payload_too_large",
        }],
    }  # fmt: skip


def test_a_rate_limited_batch_is_a_503_to_retry_not_a_4xx_to_drop(env: Env) -> None:
    _, key = env.runtime.metadata.create_key("default", "write", rate=1, burst=2)
    two = json.dumps({"events": [game_event(1), game_event(2)]}).encode()
    assert post(env, two, key).json()["accepted"] == 2
    again = json.dumps({"events": [game_event(3), game_event(4)]}).encode()
    answer = post(env, again, key)
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (0, 2)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(None, "rate_limit_exceeded")]
    assert env.sql("select count(*) as n from events") == [{"n": 2}]


def test_a_refused_request_has_the_same_shape(env: Env) -> None:
    answer = post(env, json.dumps({"events": [game_event(1)]}).encode(), key="nope")
    assert answer.status_code == 401
    assert answer.json() == {
        "accepted": 0,
        "rejected": 1,
        "errors": [{
            "index": None, "field": None, "message": "missing or unknown key",
            "code": "unauthorized",
        }],
    }  # fmt: skip
