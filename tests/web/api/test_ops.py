"""Health, readiness and metrics."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Env
from tests.integration.server import Server


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_health_and_ready(env: Env) -> None:
    assert env.client.get("/healthz").json() == {"status": "ok"}
    ready = env.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_metrics_count_accepted_rejected_deduplicated(env: Env) -> None:
    before = env.metrics()
    headers = {"X-Write-Key": env.write_key}
    batch = {
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "messageId": "same"},
            {"type": "track", "userId": "u", "event": "A", "messageId": "same"},
            {"type": "track", "event": "no id"},
        ]
    }
    env.client.post("/v1/batch", json=batch, headers=headers)
    env.client.post(
        "/v1/track", json={"userId": "u", "event": "E"}, headers={"X-Write-Key": "nope"}
    )
    after = env.metrics()

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("roost_events_accepted_total", dialect="segment", project="default") == 1
    assert delta("roost_events_deduplicated_total", dialect="segment", project="default") == 1
    assert delta("roost_events_rejected_total", dialect="segment", reason="invalid_request") == 1
    assert delta("roost_events_rejected_total", dialect="segment", reason="unauthorized") == 1
    assert delta("roost_ingest_request_seconds_count", dialect="segment", status="200") == 1
    assert delta("roost_ingest_request_seconds_count", dialect="segment", status="401") == 1
    assert delta("roost_log_commit_seconds_count") >= 1
    assert delta("roost_log_batch_events_sum") >= 1
    env.sql("select 1")  # waits for the loader
    assert metric(env.metrics(), "roost_warehouse_load_seconds_count") >= 1


def test_metrics_on_the_main_port_take_the_token_and_carry_process_and_lag(env: Env) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert env.client.get("/metrics", headers=headers).status_code == 404
    text = env.metrics()
    assert metric(text, "roost_warehouse_behind_events") >= 0
    assert "process_resident_memory_bytes" in text and "python_gc_collections_total" in text
    assert "roost_log_last_offset" in text


def test_metrics_have_their_own_loopback_address(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 404  # not on the API's port
        own = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics")
        assert own.status_code == 200 and "roost_warehouse_behind_events" in own.text
    finally:
        server.stop()
