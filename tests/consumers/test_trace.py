"""Where did my event go: a trace by messageId against what really happened — a webhook that
took it, one whose rules left it out (and which rule), one that dead-lettered it, one made
after it arrived; refused and deduplicated copies; an event never seen named as such. And a
destination whose backlog passes its threshold alerting, once a day."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roost.consumers import forwarder
from roost.consumers.refusals import KEPT_TIMES, MAX_TEXT, Refusals
from roost.model import Outcome, Reason
from roost.storage.metadata.destinations import State
from roost.storage.metadata.notices import checked
from tests.conftest import Env, make_settings, open_env
from tests.integration.receiver import Receiver

FAST = {"kind": "webhook", "batch_seconds": 0.05, "retry_base_seconds": 0.02,
        "retry_max_seconds": 0.1}  # fmt: skip


def admin(env: Env) -> dict[str, str]:
    _, raw = env.runtime.metadata.create_key("default", "admin")
    return {"Authorization": f"Bearer {raw}"}


def trace(env: Env, message_id: str) -> Any:
    return env.client.get(f"/api/v1/events/{message_id}/trace",
                          headers={"Authorization": f"Bearer {env.read_key}"})  # fmt: skip


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in body["destinations"]}


def test_a_trace_says_what_each_destination_did(env: Env) -> None:
    ok, failing = Receiver().start(), Receiver().start()
    failing.script.extend([(400, {})])  # refused: never worth another try
    keys = admin(env)
    try:
        for name, spec in (("good", {**FAST, "url": ok.url}),
                           ("pages_only", {**FAST, "url": ok.url, "types": ["page"]}),
                           ("broken", {**FAST, "url": failing.url, "max_attempts": 1})):  # fmt: skip
            made = env.client.request("PUT", f"/api/v1/admin/destinations/{name}", json=spec,
                                      headers=keys)  # fmt: skip
            assert made.status_code == 200, made.text
        sent = env.client.post("/v1/track", json={"userId": "u1", "event": "Bought",
                                                  "messageId": "m-1"},
                               headers={"X-Write-Key": env.write_key})  # fmt: skip
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = by_name(trace(env, "m-1").json())
            if found["good"]["status"] == "delivered" and found["broken"]["status"] != "waiting":
                break
            time.sleep(0.05)
        body = trace(env, "m-1").json()
        assert body["received"]["dialect"] == "segment"
        assert body["event"]["event"] == "Bought" and body["stored"]["log_offset"] >= 1
        found = by_name(body)
        assert found["good"]["status"] == "delivered" and found["good"]["attempts"] == 1
        assert [e["messageId"] for e in ok.events()] == ["m-1"]  # what really happened
        assert found["pages_only"] == {"name": "pages_only", "kind": "webhook",
                                       "status": "filtered", "rule": "types"}  # fmt: skip
        assert found["broken"]["status"] == "dead_lettered"
        assert "400" in found["broken"]["error"]
        # a destination made after the event arrived never had it
        made = env.client.request("PUT", "/api/v1/admin/destinations/late",
                                  json={**FAST, "url": ok.url}, headers=keys)  # fmt: skip
        assert made.status_code == 200
        assert by_name(trace(env, "m-1").json())["late"]["status"] == "not_sent"
    finally:
        for receiver in (ok, failing):
            receiver.release()
            receiver.stop()


def test_a_refused_event_is_not_traced_and_the_answer_says_why(env: Env) -> None:
    missing = trace(env, "never-sent")
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "message_id"
    assert "live debugger" in missing.json()["error"]["message"]


def test_deliveries_are_kept_for_the_trace_retention_only(env: Env) -> None:
    store = env.runtime.destinations
    destination = store.set(env.runtime.metadata.project("default").id,
                            {**FAST, "name": "kept", "url": "http://127.0.0.1:9/x"})  # fmt: skip
    store.record(destination.id, State(log_offset=9), delivered=(5, 9, 5, 1))
    assert store.delivery_of(destination.id, 7) is not None
    store.forget_deliveries(destination.id, forwarder._now() + forwarder.TRACE_RETENTION)
    assert store.delivery_of(destination.id, 7) is None


def test_refused_and_deduplicated_copies_are_traced(env: Env) -> None:
    env.runtime.contract_store.set(1, "Paid", {"type": "object", "required": ["amount"]}, "block")
    env.runtime.contracts.plan.forget()
    headers = {"X-Write-Key": env.write_key}
    refused = env.client.post("/v1/track", json={"userId": "u", "event": "Paid", "messageId": "r1"},
                              headers=headers)  # fmt: skip
    assert refused.status_code == 422
    body = trace(env, "r1").json()
    assert body["stored"] is None
    assert [(t["reason"], t["field"], t["stored"]) for t in body["refused"]] == [
        ("contract_violation", "properties", False)
    ]
    for _ in range(2):  # the second is a duplicate: stored once, the copy traced
        sent = env.client.post("/v1/track", json={"userId": "u", "event": "Ok", "messageId": "d1"},
                               headers=headers)  # fmt: skip
        assert sent.status_code == 200
    body = trace(env, "d1").json()
    assert body["stored"]["log_offset"] >= 1
    assert [(t["reason"], t["stored"]) for t in body["refused"]] == [("duplicate", True)]


def test_a_destination_past_its_backlog_alerts_once_a_day(env: Env) -> None:
    """A paused destination with `alert_backlog: 2`: one event, no alert; two, one alert
    through the workspace's webhook; more, and no second one that day."""
    hook = Receiver().start()
    try:
        project = env.runtime.metadata.project("default")
        env.runtime.notices.set_channels(project.workspace_id, checked({"webhook_url": hook.url}))
        made = env.client.request(
            "PUT", "/api/v1/admin/destinations/slow",
            json={**FAST, "url": "http://127.0.0.1:9/x", "enabled": False, "alert_backlog": 2},
            headers=admin(env),
        )  # fmt: skip
        assert made.status_code == 200, made.text
        send = {"X-Write-Key": env.write_key}
        env.client.post("/v1/track", json={"userId": "u", "event": "A"}, headers=send)
        assert env.runtime.destination_alerts() == 0
        env.client.post("/v1/track", json={"userId": "u", "event": "B"}, headers=send)
        assert env.runtime.destination_alerts() == 1
        env.client.post("/v1/track", json={"userId": "u", "event": "C"}, headers=send)
        assert env.runtime.destination_alerts() == 0  # once a day
        (alert,) = [r.json for r in hook.received]
        assert (alert["type"], alert["destination"], alert["backlog"]) == (
            "destination_backlog", "slow", 2)  # fmt: skip
        assert "2 events waiting" in alert["message"]
        refused = env.client.request("PUT", "/api/v1/admin/destinations/slow",
                                     json={**FAST, "url": "http://127.0.0.1:9/x", "alert_backlog": 0},
                                     headers=admin(env))  # fmt: skip
        assert refused.status_code == 400 and "alert_backlog" in refused.text
    finally:
        hook.release()
        hook.stop()


def test_refusals_are_remembered_within_bounds() -> None:
    kept = Refusals(most=2)
    now = datetime.now(UTC)
    for _ in range(5):  # the same id five times, a long client-chosen text
        kept.record(1, "segment", now, [Outcome(index=0, reason=Reason.INVALID_REQUEST,
                                                message="x" * 10_000, message_id="a")])  # fmt: skip
    times = kept.of(1, "a")
    assert len(times) == KEPT_TIMES and all(len(t["message"]) == MAX_TEXT for t in times)
    for mid in ("b", "c"):
        kept.record(1, "segment", now, [Outcome(index=0, reason=Reason.DUPLICATE, message="d",
                                                message_id=mid, stored=True)])  # fmt: skip
    assert kept.of(1, "a") == [] and len(kept.of(1, "c")) == 1  # the oldest id went


def test_a_delivery_older_than_the_trace_retention_is_traced_without_its_time(
    tmp_path: Path,
) -> None:
    """trace_retention_days 0: the delivered batch's record goes at once (the first
    delivery prunes), so the trace still says delivered — its time no longer known."""
    ok = Receiver().start()
    try:
        for env in open_env(make_settings(tmp_path, trace_retention_days=0)):
            made = env.client.request("PUT", "/api/v1/admin/destinations/good",
                                      json={**FAST, "url": ok.url}, headers=admin(env))  # fmt: skip
            assert made.status_code == 200, made.text
            sent = env.client.post("/v1/track", json={"userId": "u", "event": "E",
                                                      "messageId": "old"},
                                   headers={"X-Write-Key": env.write_key})  # fmt: skip
            assert sent.status_code == 200
            deadline = time.monotonic() + 10
            while by_name(trace(env, "old").json())["good"]["status"] != "delivered":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            good = by_name(trace(env, "old").json())["good"]
            assert good["at"] is None and [e["messageId"] for e in ok.events()] == ["old"]
    finally:
        ok.release()
        ok.stop()
