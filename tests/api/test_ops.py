"""Health, readiness and metrics."""

from __future__ import annotations

from tests.conftest import Env


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
    before = env.client.get("/metrics").text
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
    after = env.client.get("/metrics").text

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
    assert metric(env.client.get("/metrics").text, "roost_warehouse_load_seconds_count") >= 1
