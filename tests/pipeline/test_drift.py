"""Warnings before a schema rots: a new event, a new property, a property's type changing,
too many event or property names — in the batch answer, remembered across a restart, and a
draft tracking plan made from what was seen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roost.storage.metadata import project_config
from tests.conftest import Env, make_settings, open_env


def batch(env: Env, *events: dict[str, Any]) -> dict[str, Any]:
    response = env.client.post(
        "/v1/batch", json={"batch": [{"type": "track", "userId": "u", **e} for e in events]},
        headers={"X-Write-Key": env.write_key},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def warned(answer: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(w["index"], w["code"], w["field"]) for w in answer.get("warnings", [])]


def test_new_and_changed_properties_are_warned_once_and_across_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for env in open_env(settings):
        first = batch(env, {"event": "Bought", "properties": {"total": 5, "sku": "a"}})
        assert warned(first) == [(0, "new_event", "batch[0].event"),
                                 (0, "new_property", "batch[0].properties.total"),
                                 (0, "new_property", "batch[0].properties.sku")]  # fmt: skip
        assert first["accepted"] == 1  # told, not refused
        assert "warnings" not in batch(env, {"event": "Bought", "properties": {"total": 7}})
        changed = batch(env, {"event": "Bought", "properties": {"total": "7", "note": None}})
        assert warned(changed) == [(0, "type_changed", "batch[0].properties.total")]
        assert "was a number, now a string" in changed["warnings"][0]["message"]
    for env in open_env(settings):  # the same data, a new process: nothing is new
        assert "warnings" not in batch(env, {"event": "Bought", "properties": {"sku": "b"}})
        draft = env.client.get("/api/v1/contracts/draft", headers={"X-Write-Key": env.read_key})
        contracts = draft.json()["contracts"]
        assert contracts == [{"target": "Bought", "action": "allow", "schema": {
            "type": "object", "properties": {"sku": {"type": "string"},
                                             "total": {"type": "number"}}}}]  # fmt: skip
        # the draft is a configuration document's contracts as it is
        project = env.runtime.metadata.project("default").id
        project_config.apply(env.runtime.config_stores(), project, {"contracts": contracts})


def test_too_many_names_are_warned_as_high_cardinality(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, drift_max_event_names=2, drift_max_properties=2)
    for env in open_env(settings):
        names = batch(env, *({"event": f"Viewed item {i}"} for i in range(3)))
        assert [w[1] for w in warned(names)] == ["new_event", "new_event", "high_cardinality"]
        assert names["accepted"] == 3
        props = batch(env, {"event": "Viewed item 0",
                            "properties": {"t1700000001": 1, "t1700000002": 1, "t1700000003": 1}})  # fmt: skip
        assert [w[1] for w in warned(props)] == ["new_property", "new_property",
                                                 "high_cardinality"]  # fmt: skip
        assert "does 't1700000003' hold an id or a time?" in props["warnings"][2]["message"]


def test_a_property_past_the_bound_on_values_is_warned_once(tmp_path: Path) -> None:
    """order_id takes a new value each event: warned once, when its estimate passes 100
    (exact to 64 values, ±13% beyond); currency's 3 values never. Recorded, so a restart
    does not warn again."""
    settings = make_settings(tmp_path, drift_max_values=100)
    events = [{"event": "Bought", "properties": {"order_id": f"o-{i}", "currency": ["EUR", "USD", "GBP"][i % 3]}}
              for i in range(300)]  # fmt: skip
    for env in open_env(settings):
        answer = batch(env, *events)
        many = [w for w in answer["warnings"] if w["code"] == "high_cardinality"]
        assert [w["field"] for w in many] == [f"batch[{many[0]['index']}].properties.order_id"]
        # exact up to 64 values, then an estimate: about the 101st value (the hash is
        # random per process, so no closer bound holds every run)
        assert many[0]["index"] >= 64, many
        assert "more than 100 distinct values" in many[0]["message"]
        again = batch(
            env, *({"event": "Bought", "properties": {"order_id": f"p-{i}"}} for i in range(300))
        )
        assert "warnings" not in again
        values = env.client.get("/api/v1/contracts/draft", headers={"X-Write-Key": env.read_key})
        assert values.json()["distinct_values"] == {"Bought.currency": 3, "Bought.order_id": None}
    for env in open_env(settings):
        assert "warnings" not in batch(env, *events)


def test_the_sketch_estimates_within_its_error() -> None:
    from roost.pipeline.drift import SKETCH, estimate, observe

    sketch: list[int] = []
    for i in range(100_000):
        observe(sketch, f"value-{i}")
        observe(sketch, f"value-{i // 2}")  # seen again: no change
    assert len(sketch) == SKETCH and sketch == sorted(set(sketch))
    # relative standard error 1/sqrt(62) ≈ 12.7%: four of them either way
    assert 49_000 < estimate(sketch) < 151_000
    small: list[int] = []
    for i in range(40):
        observe(small, str(i % 10))
    assert estimate(small) == 10  # under SKETCH values: exact


def test_drift_is_listed_since_a_time_and_digested_weekly(env: Env) -> None:
    from datetime import UTC, datetime, timedelta

    from roost.storage.metadata.notices import checked
    from tests.integration.receiver import Receiver

    batch(env, {"event": "Bought", "properties": {"total": 5}})
    batch(env, {"event": "Bought", "properties": {"total": "5"}})
    listed = env.client.get("/api/v1/contracts/drift", headers={"X-Write-Key": env.read_key})
    assert [(d["code"], d["event"], d["property"], d["detail"]) for d in listed.json()["drift"]] == [
        ("new_event", "Bought", None, None), ("new_property", "Bought", "total", "number"),
        ("type_changed", "Bought", "total", "number → string")]  # fmt: skip
    future = env.client.get("/api/v1/contracts/drift?since=2999-01-01T00:00:00Z",
                            headers={"X-Write-Key": env.read_key})  # fmt: skip
    assert future.json()["drift"] == []
    bad = env.client.get(
        "/api/v1/contracts/drift?since=yesterday", headers={"X-Write-Key": env.read_key}
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"
    hook = Receiver().start()
    try:
        workspace = env.runtime.metadata.project("default").workspace_id
        next_week = datetime.now(UTC) + timedelta(days=7)
        assert env.runtime.drift_digests(next_week) == 0  # nowhere to send it yet
        env.runtime.notices.set_channels(workspace, checked({"webhook_url": hook.url}))
        assert env.runtime.drift_digests(datetime.now(UTC)) == 0  # last week: nothing new
        assert env.runtime.drift_digests(next_week) == 1
        assert env.runtime.drift_digests(next_week) == 0  # once a week
        (digest,) = [r.json for r in hook.received]
        assert digest["type"] == "schema_digest"
        assert [d["code"] for d in digest["projects"]["default"]] == [
            "new_event", "new_property", "type_changed"]  # fmt: skip
        assert "type changed number → string: Bought · total" in digest["message"]
    finally:
        hook.release()
        hook.stop()
