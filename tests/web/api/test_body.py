"""Bodies: gzip, text/plain, size limits enforced while reading, CORS preflight."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env, make_settings, open_env


def track(n: int = 1) -> bytes:
    return json.dumps({"userId": "u1", "event": f"E{n}"}).encode()


def test_gzip_body_is_accepted(env: Env) -> None:
    response = env.client.post(
        "/v1/track",
        content=gzip.compress(track()),
        headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {env.write_key}"},
    )
    assert response.status_code == 200, response.text
    assert [r["event"] for r in env.sql("select event from events")] == ["E1"]


def test_text_plain_body_is_accepted(env: Env) -> None:
    response = env.client.post(
        "/v1/track",
        content=track(),
        headers={"Content-Type": "text/plain;charset=UTF-8", "X-Write-Key": env.write_key},
    )
    assert response.status_code == 200


def test_corrupt_gzip_is_400(env: Env) -> None:
    response = env.client.post(
        "/v1/track",
        content=b"\x1f\x8b\x08garbage",
        headers={"Content-Encoding": "gzip", "X-Write-Key": env.write_key},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_unknown_encoding_is_415(env: Env) -> None:
    response = env.client.post(
        "/v1/track",
        content=track(),
        headers={"Content-Encoding": "br", "X-Write-Key": env.write_key},
    )
    assert response.status_code == 415


@pytest.fixture
def small_env(tmp_path: Path) -> Iterator[Env]:
    yield from open_env(make_settings(tmp_path, max_request_bytes=1000, max_event_bytes=200))


def test_declared_length_over_limit_is_413(small_env: Env) -> None:
    body = json.dumps({"userId": "u1", "event": "E", "properties": {"x": "y" * 2000}}).encode()
    response = small_env.client.post(
        "/v1/track", content=body, headers={"X-Write-Key": small_env.write_key}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_streamed_body_over_limit_is_413_without_reading_it_all(small_env: Env) -> None:
    sent: list[int] = []

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):  # 100 KB offered, in 1 KB chunks, with no Content-Length
            sent.append(1)
            yield b"x" * 1024

    response = small_env.client.post(
        "/v1/track", content=chunks(), headers={"X-Write-Key": small_env.write_key}
    )
    assert response.status_code == 413
    assert len(sent) < 100, "the server read the whole body before refusing it"


def test_gzip_bomb_is_413(small_env: Env) -> None:
    body = gzip.compress(json.dumps({"userId": "u", "event": "E", "p": "0" * 100_000}).encode())
    assert len(body) < 1000
    response = small_env.client.post(
        "/v1/track",
        content=body,
        headers={"Content-Encoding": "gzip", "X-Write-Key": small_env.write_key},
    )
    assert response.status_code == 413


def test_single_event_over_event_limit_is_413(small_env: Env) -> None:
    body = json.dumps({"userId": "u1", "event": "E", "properties": {"x": "y" * 300}}).encode()
    response = small_env.client.post(
        "/v1/track", content=body, headers={"X-Write-Key": small_env.write_key}
    )
    assert response.status_code == 413


def test_batch_event_over_event_limit_is_rejected_alone(small_env: Env) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "u", "event": "Big", "properties": {"x": "y" * 300}},
            {"type": "track", "userId": "u", "event": "Small"},
        ]
    }
    response = small_env.client.post(
        "/v1/batch", json=batch, headers={"X-Write-Key": small_env.write_key}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["errors"][0]["index"] == 0
    assert body["errors"][0]["code"] == "too_large"
    assert [r["event"] for r in small_env.sql("select event from events")] == ["Small"]


def test_a_batch_path_takes_up_to_the_batch_limit(tmp_path: Path) -> None:
    """RudderStack's libraries send batches of up to 4 MB: the batch paths take
    `max_batch_bytes`, every other path `max_request_bytes`."""
    settings = make_settings(tmp_path, max_request_bytes=1000, max_batch_bytes=5000)
    for env in open_env(settings):
        headers = {"X-Write-Key": env.write_key}
        batch = {"batch": [{"type": "track", "userId": "u", "event": f"E{i}", "messageId": f"m{i}",
                            "properties": {"pad": "x" * 100}} for i in range(20)]}  # fmt: skip
        body = json.dumps(batch).encode()
        assert 1000 < len(body) < 5000
        ok = env.client.post("/v1/batch", content=body, headers=headers)
        assert ok.status_code == 200 and ok.json()["accepted"] == 20, ok.text
        for path in ("/v1/track", "/api/v1/events/batch"):  # a single call, another batch
            refused = env.client.post(path, content=body, headers=headers)
            assert refused.status_code == 413, (path, refused.text)
        twice = json.dumps({"batch": batch["batch"] * 3}).encode()
        assert env.client.post("/v1/import", content=twice, headers=headers).status_code == 413


def test_an_event_is_measured_as_stored_not_as_escaped(small_env: Env) -> None:
    """Python's json writes each non-ASCII character as a 6-byte escape: 30 CJK characters
    are 180 bytes sent but 90 stored (within a 200-byte limit); 80 are 240 stored (over it)."""
    headers = {"X-Write-Key": small_env.write_key, "Content-Type": "application/json"}
    small = json.dumps({"userId": "u", "event": "E", "properties": {"t": "数" * 30}})
    assert len(small.encode()) > 200  # escaped: 180 bytes of text alone
    ok = small_env.client.post("/v1/track", content=small.encode(), headers=headers)
    assert ok.status_code == 200, ok.text
    big = json.dumps({"userId": "u", "event": "E", "properties": {"t": "数" * 80}})
    refused = small_env.client.post("/v1/track", content=big.encode(), headers=headers)
    assert refused.status_code == 413
    batch = json.dumps({"batch": [{"type": "track", **json.loads(small)},
                                  {"type": "track", **json.loads(big)}]})  # fmt: skip
    answer = small_env.client.post("/v1/batch", content=batch.encode(), headers=headers)
    assert answer.json()["accepted"] == 1 and answer.json()["errors"][0]["index"] == 1
    stored = [logged.event.properties["t"] for logged in small_env.runtime.log.read_sync(0, 10)]
    assert stored == ["数" * 30, "数" * 30]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/track",
        "/v1/batch",
        "/api/v1/events",
        "/api/v1/events/batch",
        "/api/v1/events/pageview",
        "/api/v1/events/custom",
        "/post",
    ],
)
def test_cors_preflight(env: Env, path: str) -> None:
    response = env.client.options(
        path,
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert "content-length" not in response.headers  # none on a 204 (RFC 9110)
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_post_answers_carry_cors_header(env: Env) -> None:
    response = env.client.post(
        "/v1/track",
        content=track(),
        headers={"X-Write-Key": env.write_key, "Origin": "https://a.example"},
    )
    assert response.headers["access-control-allow-origin"] == "https://a.example"
    # its length said, not sent chunked
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers


def test_trailing_slash_paths_work(env: Env) -> None:
    response = env.client.post(
        "/v1/batch/", json={"batch": []}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200
    assert response.json()["received"] == 0


def test_segment_batch_limit(env: Env) -> None:
    item = {"type": "track", "userId": "u", "event": "E"}
    response = env.client.post(
        "/api/v1/events/batch", json={"batch": [item] * 501}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 400
    assert "at most 500" in response.json()["message"]
    response = env.client.post(
        "/v1/batch", json={"batch": [item] * 2501}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 400
    response = env.client.post(
        "/v1/batch", json={"batch": [item] * 2500}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 2500
