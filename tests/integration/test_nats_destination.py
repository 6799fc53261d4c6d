"""The NATS destination against a real nats-server: JetStream with messageId dedup, plain
subjects, and a server that goes down and comes back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats
import pytest

from roost.devtools.servers import Nats
from tests.conftest import Env

pytestmark = pytest.mark.slow


def admin(env: Env) -> dict[str, str]:
    _, raw = env.runtime.metadata.create_key("default", "admin")
    return {"Authorization": f"Bearer {raw}"}


def send(env: Env, *events: dict[str, Any]) -> None:
    response = env.client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "userId": "u", **e} for e in events]},
        headers={"X-Write-Key": env.write_key},
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def status(env: Env) -> dict[str, Any]:
    found = env.client.get("/api/v1/destinations", headers={"X-Write-Key": env.read_key})
    return dict(found.json()["destinations"][0])


def wait(env: Env, check: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not check(found := status(env)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


async def stream_messages(url: str) -> list[tuple[str, dict[str, Any], str | None]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("ROOST")
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("ROOST", seq)
            out.append((msg.subject, json.loads(msg.data), (msg.headers or {}).get("Nats-Msg-Id")))
        return out
    finally:
        await nc.close()


async def make_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(name="ROOST", subjects=["roost.>"])
    finally:
        await nc.close()


def test_jetstream_gets_each_event_once_even_when_replayed_or_down(
    env: Env, nats_server: Nats
) -> None:
    asyncio.run(make_stream(nats_server.url))
    response = env.client.request(
        "PUT",
        "/api/v1/admin/destinations/bus",
        json={
            "kind": "nats",
            "url": nats_server.url,
            "subject": "roost.{type}.{event}",
            "batch_seconds": 0.05,
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.2,
            "timeout": 1,
        },
        headers=admin(env),
    )
    assert response.status_code == 200, response.text
    send(
        env,
        {"event": "Order Completed", "messageId": "m1"},
        {"event": "Signed Up", "messageId": "m2"},
    )
    wait(env, lambda s: s["delivered"] >= 2)
    found = asyncio.run(stream_messages(nats_server.url))
    assert [(s, e["messageId"], h) for s, e, h in found] == [
        ("roost.track.Order_Completed", "m1", "m1"),
        ("roost.track.Signed_Up", "m2", "m2"),
    ]
    env.client.post(
        "/api/v1/admin/destinations/bus/replay", json={"from_offset": 1}, headers=admin(env)
    )
    wait(env, lambda s: s["delivered"] >= 4)
    assert len(asyncio.run(stream_messages(nats_server.url))) == 2  # Nats-Msg-Id dedup

    nats_server.halt()
    send(env, *({"event": "E", "messageId": f"d{i}"} for i in range(5)))
    assert wait(env, lambda s: s["failures"] >= 2)["failures"] >= 2
    nats_server.start()
    wait(env, lambda s: s["delivered"] >= 9)
    found = asyncio.run(stream_messages(nats_server.url))
    assert [e["messageId"] for _, e, _ in found] == ["m1", "m2", *(f"d{i}" for i in range(5))]


def test_without_a_stream_events_are_published_on_plain_subjects(
    env: Env, nats_server: Nats
) -> None:
    async def listen() -> list[tuple[str, str]]:
        nc = await nats.connect(nats_server.url)
        got: list[tuple[str, str]] = []
        sub = await nc.subscribe("plain.>")
        await nc.flush()
        response = env.client.request(
            "PUT",
            "/api/v1/admin/destinations/plain",
            json={
                "kind": "nats",
                "url": nats_server.url,
                "subject": "plain.{type}",
                "batch_seconds": 0.05,
            },
            headers=admin(env),
        )
        assert response.status_code == 200
        await asyncio.to_thread(send, env, {"event": "E", "messageId": "p1"})
        msg = await sub.next_msg(timeout=15)
        got.append((msg.subject, json.loads(msg.data)["messageId"]))
        await nc.close()
        return got

    assert asyncio.run(listen()) == [("plain.track", "p1")]
