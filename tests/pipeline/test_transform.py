"""Transformations and storage consent on the ingest path, set through the admin API."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[None]:
    """A real distribution on sys.path declaring `roost.transformations` entry points."""
    (tmp_path / "shop_steps.py").write_text(
        textwrap.dedent(
            """
            def cents(event):
                props = event["properties"]
                props["price_cents"] = round(props["price"] * 100)  # KeyError without a price
                return event

            def drop_bots(event):
                return None if event["properties"].get("bot") else event
            """
        )
    )
    info = tmp_path / "shop_steps-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-steps\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[roost.transformations]\ncents = shop_steps:cents\ndrop_bots = shop_steps:drop_bots\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("shop_steps", None)


def admin(env: Env) -> dict[str, str]:
    _, raw = env.runtime.metadata.create_key("default", "admin")
    return {"Authorization": f"Bearer {raw}"}


def configure(env: Env, section: str, value: Any) -> Any:
    return env.client.request("PUT", f"/api/v1/admin/{section}", json=value, headers=admin(env))


def batch(env: Env, *events: dict[str, Any]) -> dict[str, Any]:
    response = env.client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "userId": "u", **e} for e in events]},
        headers={"X-Write-Key": env.write_key},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def stored(env: Env) -> list[dict[str, Any]]:
    rows = env.sql("select message_id, event, properties, context from events order by log_offset")
    return [
        {
            "id": r["message_id"],
            "event": r["event"],
            "properties": json.loads(r["properties"]),
            "context": json.loads(r["context"]),
        }
        for r in rows
    ]


def test_steps_run_in_order_and_filtered_events_are_accepted_but_not_stored(env: Env) -> None:
    steps = [
        {"step": "rename_event", "from": "signup", "to": "Signed Up"},
        {"step": "rename_property", "from": "cost", "to": "price"},
        {"step": "set_property", "name": "label", "value": "{event}: {properties.price}"},
        {"step": "drop_property", "name": "secret"},
        {"step": "filter", "when": {"field": "properties.internal", "equals": True}},
    ]
    response = configure(env, "transformations", steps)
    assert response.status_code == 200, response.text
    assert response.json()["transformations"] == steps
    answer = batch(
        env,
        {"event": "signup", "messageId": "a", "properties": {"cost": 3, "secret": "x"}},
        {"event": "signup", "messageId": "b", "properties": {"internal": True}},
    )
    answer.pop("warnings", None)  # a new event and properties (pipeline/drift.py)
    assert answer == {"received": 2, "accepted": 2, "rejected": 0, "errors": []}
    assert [(e["id"], e["event"], e["properties"]) for e in stored(env)] == [
        ("a", "Signed Up", {"price": 3, "label": "Signed Up: 3"})
    ]
    # what changed, by name only: the dropped secret's value is nowhere on disk
    changed = ["event", "properties.cost", "properties.label", "properties.price",
               "properties.secret"]  # fmt: skip
    assert stored(env)[0]["context"]["roost"]["transformed"] == changed
    traced = env.client.get("/api/v1/events/a/trace", headers={"X-Write-Key": env.read_key})
    assert traced.json()["pipeline"]["transformed"] == changed


def test_a_failing_function_stores_the_event_untransformed_with_the_error(
    env: Env, plugin: None
) -> None:
    steps = [
        {"step": "rename_event", "from": "buy", "to": "Order Completed"},
        {"step": "function", "name": "cents"},
        {"step": "function", "name": "drop_bots"},
    ]
    assert configure(env, "transformations", steps).status_code == 200
    answer = batch(
        env,
        {"event": "buy", "messageId": "a", "properties": {"price": 1.5}},
        {"event": "buy", "messageId": "b", "properties": {}},  # no price: cents raises
        {"event": "buy", "messageId": "c", "properties": {"price": 2, "bot": True}},
    )
    assert answer["accepted"] == 3 and answer["errors"] == []
    rows = stored(env)
    assert [(r["id"], r["event"], r["properties"]) for r in rows] == [
        ("a", "Order Completed", {"price": 1.5, "price_cents": 150}),
        ("b", "buy", {}),  # as it came: the rename before the failure is undone too
    ]
    error = rows[1]["context"]["roost"]["transformation_error"]
    assert error.startswith("transformations[1] (function:cents): KeyError")


def test_a_bad_transformation_list_is_refused_naming_the_step(env: Env) -> None:
    response = configure(env, "transformations", [{"step": "sample", "rate": 2}])
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "transformations[0].rate"
    unknown = configure(env, "transformations", [{"step": "function", "name": "nope"}])
    assert unknown.json()["error"]["field"] == "transformations[0].name"


CONSENTED = {"consent": {"categoryPreferences": {"Analytics": True, "Ads": False}}}
REFUSED = {"consent": {"categoryPreferences": {"Analytics": False}}}


def test_storage_consent_strip_keeps_the_event_without_its_properties(env: Env) -> None:
    assert (
        configure(env, "consent", {"categories": ["Analytics"], "action": "strip"}).status_code
        == 200
    )
    batch(
        env,
        {"event": "E", "messageId": "a", "properties": {"p": 1}, "context": CONSENTED},
        {"event": "E", "messageId": "b", "properties": {"p": 2}, "context": REFUSED},
        {"event": "E", "messageId": "c", "properties": {"p": 3}},  # no preferences at all
    )
    assert [(r["id"], r["properties"]) for r in stored(env)] == [
        ("a", {"p": 1}),
        ("b", {}),
        ("c", {}),
    ]


def test_storage_consent_refuse_rejects_the_event_alone(env: Env) -> None:
    configure(env, "consent", {"categories": ["Analytics"], "action": "refuse"})
    answer = batch(
        env,
        {"event": "E", "messageId": "a", "context": CONSENTED},
        {"event": "E", "messageId": "b", "context": REFUSED},
    )
    assert answer["accepted"] == 1
    assert answer["errors"] == [
        {
            "index": 1,
            "code": "consent_required",
            "message": "batch[1].context.consent.categoryPreferences: this project stores only "
            "events consenting to Analytics",
            "field": "batch[1].context.consent.categoryPreferences",
        }
    ]
    assert [r["id"] for r in stored(env)] == ["a"]


def test_a_bad_consent_setting_is_refused(env: Env) -> None:
    response = configure(env, "consent", {"categories": ["Analytics"], "action": "shrug"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "consent.action"


def test_the_whole_config_document_round_trips_and_is_checked_before_anything_is_written(
    env: Env,
) -> None:
    doc = {
        "unplanned": "flag",
        "contracts": [
            {"target": "Order Completed", "action": "block", "schema": {"type": "object"}}
        ],
        "transformations": [{"step": "rename_event", "from": "a", "to": "b"}],
        "consent": {"categories": ["Analytics"], "action": "strip"},
        "destinations": [
            {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/h", "batch_count": 50}
        ],
        "goals": [
            {"name": "Pro", "event": "Order Completed", "properties": {"plan": "pro"}},
            {"name": "Docs", "page": "/docs/*"},
        ],
        "timezone": "Europe/Berlin",
    }
    headers = admin(env)
    put = env.client.request("PUT", "/api/v1/admin/config", json=doc, headers=headers)
    assert put.status_code == 200, put.text
    got = env.client.get("/api/v1/admin/config", headers=headers).json()
    assert got == doc
    bad = {**doc, "transformations": [], "destinations": [{"name": "x", "kind": "webhook"}]}
    refused = env.client.request("PUT", "/api/v1/admin/config", json=bad, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "destinations[0].url"
    assert env.client.get("/api/v1/admin/config", headers=headers).json() == doc  # untouched
    read = env.client.get("/api/v1/admin/config", headers={"X-Write-Key": env.read_key})
    assert read.status_code == 403


@pytest.mark.parametrize(
    "goals, field",
    [
        ({"name": "x"}, "goals"),
        ([{"name": "a"}], "goals[0]"),
        ([{"name": "a", "event": "E", "page": "/"}], "goals[0]"),
        ([{"name": "a", "page": "docs"}], "goals[0].page"),
        ([{"name": "a", "page": "/d", "properties": {"k": "v"}}], "goals[0].properties"),
        ([{"name": "a", "event": "E"}, {"name": "a", "event": "F"}], "goals[1].name"),
        ([{"name": "a", "event": "E", "properties": {"k": [1]}}], "goals[0].properties.k"),
        ([{"name": "a", "event": "E", "colour": "red"}], "goals[0].colour"),
        ([{"name": "a", "event": "E" * 201}], "goals[0].event"),
        ([{"name": "a", "event": "E", "properties": {"k": "v" * 201}}], "goals[0].properties.k"),
    ],
)
def test_a_goal_is_checked_naming_its_field(env: Env, goals: Any, field: str) -> None:
    refused = env.client.request(
        "PUT", "/api/v1/admin/config", json={"goals": goals}, headers=admin(env)
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] == field


def test_a_time_zone_is_checked(env: Env) -> None:
    refused = env.client.request(
        "PUT", "/api/v1/admin/config", json={"timezone": "Mars/Olympus"}, headers=admin(env)
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] == "timezone"


def test_with_quarantine_a_failing_transformation_holds_the_event_until_replayed(
    env: Env, plugin: None
) -> None:
    """`transformation_errors: quarantine`: the event a step fails on is answered as accepted
    and held, not stored; sent again it is held once; a replay while the step still fails
    keeps it; once the step is fixed a replay stores it once."""
    _, raw = env.runtime.metadata.create_key("default", "admin")
    key = {"Authorization": f"Bearer {raw}"}

    def config(doc: dict[str, Any]) -> None:
        response = env.client.request("PUT", "/api/v1/admin/config", json=doc, headers=key)
        assert response.status_code == 200, response.text
        env.runtime.transform.steps.forget(), env.runtime.transform.errors.forget()

    def replay() -> Any:
        return env.client.post("/api/v1/quarantine/replay", headers=key).json()

    config({"transformations": [{"step": "function", "name": "cents"}],
            "transformation_errors": "quarantine"})  # fmt: skip
    sent = [{"event": "buy", "messageId": "a", "properties": {"price": 1.5}},
            {"event": "buy", "messageId": "b", "properties": {}}]  # fmt: skip
    answer = batch(env, *sent)
    assert answer["accepted"] == 2 and answer["errors"] == []
    assert [r["id"] for r in stored(env)] == ["a"]
    listed = env.client.get("/api/v1/quarantine", headers={"X-Write-Key": env.read_key}).json()
    assert [(e["message_id"], e["reason"]) for e in listed["events"]] == [
        ("b", "transformation_failed")
    ]
    assert "KeyError" in listed["events"][0]["message"]
    traced = env.client.get("/api/v1/events/b/trace", headers={"X-Write-Key": env.read_key}).json()
    assert traced["stored"] is None and traced["quarantined"]["reason"] == "transformation_failed"
    assert batch(env, sent[1])["accepted"] == 1  # sent again: held again, once
    assert env.runtime.quarantine.count(1) == 1
    assert replay() == {"stored": 0, "still_held": 1}  # the step still fails: kept
    assert env.runtime.quarantine.count(1) == 1
    exported = env.client.get("/api/v1/admin/config", headers=key).json()
    assert exported["transformation_errors"] == "quarantine"
    config({"transformations": []})  # fixed (here: taken out)
    assert replay() == {"stored": 1, "still_held": 0}
    assert sorted(r["id"] for r in stored(env)) == ["a", "b"]
    assert replay() == {"stored": 0, "still_held": 0}
    assert sorted(r["id"] for r in stored(env)) == ["a", "b"]


def test_the_quarantines_room_is_counted_only_when_a_step_fails(env: Env, plugin: None) -> None:
    """The room left in the quarantine is a count in the metadata store, read on the event
    loop: a batch every step passes must not ask it."""
    response = configure(env, "config", {"transformations": [{"step": "function", "name": "cents"}],
                                         "transformation_errors": "quarantine"})  # fmt: skip
    assert response.status_code == 200, response.text
    transform = env.runtime.transform
    transform.steps.forget(), transform.errors.forget(), transform.room.forget()
    asked: list[int] = []
    counted = transform.room.load
    transform.room.load = lambda project_id: asked.append(project_id) or counted(project_id)
    passing = {"event": "buy", "messageId": "p", "properties": {"price": 2.0}}
    assert batch(env, passing)["accepted"] == 1
    assert asked == []
    assert batch(env, {"event": "buy", "messageId": "f", "properties": {}})["accepted"] == 1
    assert asked == [1] and env.runtime.quarantine.count(1) == 1
