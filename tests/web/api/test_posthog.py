"""How posthog-js sends what the golden cases cannot hold: gzip without a header
(`?compression=gzip-js`), base64 in a form, `offset` instead of a time; its /decide/ call;
and a compressed body bounded like any other."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.conftest import Env


def events(env: Env) -> list[Any]:
    return [logged.event for logged in env.runtime.log.read_sync(0, 1000)]


def js(env: Env, name: str, **properties: Any) -> dict[str, Any]:
    return {"event": name, "properties": {"token": env.write_key, "distinct_id": "d1",
                                          "$device_id": "d1", **properties}}  # fmt: skip


def test_gzip_js_and_an_offset(env: Env) -> None:
    body = gzip.compress(json.dumps([{**js(env, "Clicked"), "offset": 90_000}]).encode())
    response = env.client.post("/e/?compression=gzip-js&ver=1.449.2", content=body,
                               headers={"Content-Type": "text/plain"})  # fmt: skip
    assert response.status_code == 200 and response.json() == {"status": 1}, response.text
    (event,) = events(env)
    assert (event.type, event.event, event.anonymous_id, event.user_id) == (
        "track", "Clicked", "d1", None)  # fmt: skip
    ago = datetime.now(UTC) - event.timestamp
    assert timedelta(seconds=85) < ago < timedelta(seconds=120)  # 90 s before it was sent


def test_base64_in_a_form(env: Env) -> None:
    data = base64.b64encode(json.dumps(js(env, "$pageview", **{
        "$current_url": "https://shop.test/ünï?x=1"})).encode()).decode()  # fmt: skip
    response = env.client.post(
        "/e/", content=urlencode({"data": data, "compression": "base64"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    (event,) = events(env)
    assert (event.type, event.url, event.path) == ("page", "https://shop.test/ünï?x=1", "/ünï")


def test_a_gzip_bomb_is_refused_within_the_limit(env: Env) -> None:
    limit = env.settings.max_request_bytes
    body = gzip.compress(b"[" + b" " * (limit * 4) + b"]")
    response = env.client.post("/e/?compression=gzip-js", content=body)
    assert response.status_code == 413, response.text
    assert response.json()["attr"] == "body"
    assert events(env) == []


def test_not_json_names_the_body(env: Env) -> None:
    response = env.client.post("/batch/", content=b"{nope", headers={"X-Write-Key": env.write_key})
    assert response.status_code == 400 and response.json()["attr"] == "body", response.text


def test_decide_lets_posthog_js_run_without_flags(env: Env) -> None:
    for path in ("/decide/?v=3", "/flags/?v=2"):
        response = env.client.post(path, json={"token": env.write_key, "distinct_id": "d1"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["featureFlags"] == {} and body["sessionRecording"] is False
        assert "gzip-js" in body["supportedCompression"]
