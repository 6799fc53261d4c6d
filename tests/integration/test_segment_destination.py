"""One Roost feeding another over Segment's HTTP API: what arrives is what was sent, a
replay is deduplicated by messageId, and a wrong write key is a dead letter at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Env
from tests.integration.server import Server, create_key

pytestmark = pytest.mark.slow


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "target").start()
    yield server
    server.stop()


def admin(env: Env) -> dict[str, str]:
    _, raw = env.runtime.metadata.create_key("default", "admin")
    return {"Authorization": f"Bearer {raw}"}


def status(env: Env) -> dict[str, Any]:
    found = env.client.get("/api/v1/destinations", headers={"X-Write-Key": env.read_key})
    return dict(found.json()["destinations"][0])


def wait(env: Env, check: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not check(found := status(env)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def target_rows(target: Server, read_key: str) -> list[list[Any]]:
    response = httpx.post(
        f"{target.url}/api/v1/sql",
        json={"sql": "select message_id, type, event, user_id, timestamp, properties, traits "
              "from events order by message_id"},
        headers={"Authorization": f"Bearer {read_key}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


def test_a_second_roost_receives_the_events_once(env: Env, target: Server) -> None:
    write_key = create_key(target.data, "write")
    read_key = create_key(target.data, "read")
    response = env.client.request(
        "PUT",
        "/api/v1/admin/destinations/upstream",
        json={"kind": "segment", "url": target.url, "write_key": write_key, "batch_seconds": 0.05},
        headers=admin(env),
    )
    assert response.status_code == 200, response.text
    sent = [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m1",
         "properties": {"revenue": 12.5}, "timestamp": "2026-11-20T10:00:00Z"},
        {"type": "identify", "userId": "u1", "messageId": "m2", "traits": {"plan": "pro"}},
        {"type": "page", "anonymousId": "a1", "name": "Pricing", "messageId": "m3"},
    ]  # fmt: skip
    answer = env.client.post(
        "/v1/batch", json={"batch": sent}, headers={"X-Write-Key": env.write_key}
    )
    assert answer.json()["accepted"] == 3
    assert wait(env, lambda s: s["delivered"] >= 3)["delivered"] == 3
    here = {r["message_id"]: r for r in env.sql("select message_id, timestamp from events")}
    rows = target_rows(target, read_key)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("m1", "track", "Order Completed", "u1"),
        ("m2", "identify", None, "u1"),
        ("m3", "page", "Pricing", None),
    ]
    assert [r[4] for r in rows] == [here[m]["timestamp"] for m in ("m1", "m2", "m3")]
    assert '"revenue": 12.5' in rows[0][5] or '"revenue":12.5' in rows[0][5]

    env.client.post(
        "/api/v1/admin/destinations/upstream/replay", json={"from_offset": 1}, headers=admin(env)
    )
    wait(env, lambda s: s["delivered"] >= 6)
    assert len(target_rows(target, read_key)) == 3  # the target deduplicated by messageId


def test_a_refused_write_key_sets_the_batch_aside_at_once(env: Env, target: Server) -> None:
    response = env.client.request(
        "PUT",
        "/api/v1/admin/destinations/upstream",
        json={"kind": "segment", "url": target.url, "write_key": "rw_wrong", "batch_seconds": 0.05},
        headers=admin(env),
    )
    assert response.status_code == 200
    env.client.post(
        "/v1/track", json={"userId": "u", "event": "E"}, headers={"X-Write-Key": env.write_key}
    )
    found = wait(env, lambda s: s["dead_letters"] >= 1)
    assert found["dead_letters"] == 1 and found["failures"] == 1
    assert found["last_error"].startswith("HTTP 401")
