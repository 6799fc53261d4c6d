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
