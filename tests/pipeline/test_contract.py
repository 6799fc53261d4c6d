"""Tracking plans, rule by rule: block, omit, allow; unplanned allow, flag, block; counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from roost.cli import main
from roost.errors import BadRequest
from roost.pipeline.plan import Schema
from tests.conftest import Env

ORDER = {
    "type": "object",
    "properties": {
        "revenue": {"type": "number"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
    },
    "required": ["revenue"],
    "additionalProperties": False,
}


def plan(env: Env, target: str, schema: dict[str, Any], action: str) -> None:
    env.runtime.contract_store.set(1, target, schema, action)
    env.runtime.contracts.plan.forget()  # as if the cache had expired


def track(env: Env, name: str, properties: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = {"userId": "u", "event": name, "properties": properties}
    response = env.client.post("/v1/track", json=body, headers={"X-Write-Key": env.write_key})
    return response.status_code, response.json()


def stored(env: Env) -> list[dict[str, Any]]:
    rows = env.sql(
        "select event, properties, context->'protocols' as protocols from events order by log_offset"
    )
    return [
        {
            "event": r["event"],
            "properties": json.loads(r["properties"]),
            "protocols": json.loads(r["protocols"]) if r["protocols"] else None,
        }
        for r in rows
    ]


def test_block_refuses_the_event_with_422_and_names_the_field(env: Env) -> None:
    plan(env, "Order Completed", ORDER, "block")
    assert track(env, "Order Completed", {"revenue": 10, "currency": "EUR"}) == (
        200,
        {"success": True},
    )
    status, body = track(env, "Order Completed", {"revenue": "ten"})
    assert status == 422
    assert body["code"] == "contract_violation"
    assert body["field"] == "properties.revenue"
    assert "rule type" in body["message"]
    batch = {
        "batch": [
            {"type": "track", "userId": "u", "event": "Order Completed", "properties": {}},
            {
                "type": "track",
                "userId": "u",
                "event": "Order Completed",
                "properties": {"revenue": 1},
            },
        ]
    }
    response = env.client.post(
        "/v1/batch", json=batch, headers={"X-Write-Key": env.write_key}
    ).json()
    assert response["accepted"] == 1
    assert (
        response["errors"][0]["index"] == 0
        and response["errors"][0]["code"] == "contract_violation"
    )
    assert [e["properties"] for e in stored(env)] == [
        {"revenue": 10, "currency": "EUR"},
        {"revenue": 1},
    ]


def test_omit_stores_without_the_offending_properties_and_flags(env: Env) -> None:
    plan(env, "Order Completed", ORDER, "omit")
    status, _ = track(env, "Order Completed", {"revenue": 5, "currency": "GBP", "coupon": "X"})
    assert status == 200
    [event] = stored(env)
    assert event["properties"] == {"revenue": 5}
    assert sorted(v["rule"] for v in event["protocols"]["violations"]) == [
        "additionalProperties",
        "enum",
    ]


def test_allow_stores_whole_and_flags(env: Env) -> None:
    plan(env, "Order Completed", ORDER, "allow")
    assert track(env, "Order Completed", {"currency": "EUR"})[0] == 200
    [event] = stored(env)
    assert event["properties"] == {"currency": "EUR"}
    assert event["protocols"]["violations"][0]["rule"] == "required"


def test_call_types_are_planned_by_type(env: Env) -> None:
    plan(
        env,
        "type:identify",
        {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer"},
            },
        },
        "block",
    )
    ok = env.client.post(
        "/v1/identify",
        json={"userId": "u", "traits": {"age": 3}},
        headers={"X-Write-Key": env.write_key},
    )
    bad = env.client.post(
        "/v1/identify",
        json={"userId": "u", "traits": {"age": "old"}},
        headers={"X-Write-Key": env.write_key},
    )
    assert ok.status_code == 200
    assert bad.status_code == 422 and bad.json()["field"] == "traits.age"


@pytest.mark.parametrize(
    ("policy", "status", "stored_count"), [("allow", 200, 1), ("flag", 200, 1), ("block", 422, 0)]
)
def test_unplanned_events(env: Env, policy: str, status: int, stored_count: int) -> None:
    plan(env, "Order Completed", ORDER, "block")
    env.runtime.contract_store.set_unplanned(1, policy)
    env.runtime.contracts.plan.forget()
    assert track(env, "Something Else", {"x": 1})[0] == status
    events = stored(env)
    assert len(events) == stored_count
    if policy == "flag":
        assert events[0]["protocols"]["violations"][0]["rule"] == "unplanned"
    if policy == "allow":
        assert events[0]["protocols"] is None


def test_violations_are_counted_per_event_and_rule(env: Env) -> None:
    plan(env, "Order Completed", ORDER, "allow")
    track(env, "Order Completed", {"revenue": "x"})
    track(env, "Order Completed", {"revenue": "y", "extra": 1})
    response = env.client.get(
        "/api/v1/contracts/violations", headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.json() == {
        "violations": [
            {"event": "Order Completed", "rule": "type", "count": 2},
            {"event": "Order Completed", "rule": "additionalProperties", "count": 1},
        ]
    }


def test_invalid_schema_and_action_are_refused(env: Env) -> None:
    with pytest.raises(BadRequest, match="schema"):
        env.runtime.contract_store.set(1, "E", {"type": "no-such-type"}, "block")
    with pytest.raises(BadRequest, match="action"):
        env.runtime.contract_store.set(1, "E", {}, "explode")


def test_cli_manages_the_plan(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path)]
    assert runner.invoke(main, ["projects", "create", "shop", *data]).exit_code == 0
    schema = tmp_path / "order.json"
    schema.write_text(json.dumps(ORDER))
    result = runner.invoke(
        main,
        [
            "contracts",
            "set",
            *data,
            "--project",
            "shop",
            "Order Completed",
            "--schema",
            f"@{schema}",
            "--action",
            "omit",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        runner.invoke(
            main, ["contracts", "unplanned", *data, "--project", "shop", "flag"]
        ).exit_code
        == 0
    )
    listed = json.loads(
        runner.invoke(main, ["contracts", "list", *data, "--project", "shop", "--json"]).output
    )
    assert listed == {
        "unplanned": "flag",
        "contracts": [{"target": "Order Completed", "action": "omit", "schema": ORDER}],
    }
    assert (
        runner.invoke(
            main, ["contracts", "delete", *data, "--project", "shop", "Order Completed"]
        ).exit_code
        == 0
    )
    bad = runner.invoke(
        main, ["contracts", "set", *data, "--project", "shop", "E", "--schema", "{not json"]
    )
    assert bad.exit_code != 0 and "not JSON" in bad.output


SCHEMAS_AND_PAYLOADS: list[tuple[dict[str, Any], list[Any]]] = [
    (
        {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "minLength": 2, "pattern": "^o-"},
                "n": {"type": "integer", "minimum": 1, "maximum": 9},
                "price": {"type": "number", "exclusiveMinimum": 0},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
                "kind": {"const": "x"},
                "ok": {"type": "boolean"},
                "any": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]},
            },
        },
        [
            {"id": "o-1"}, {"id": "x-1"}, {"id": "o"}, {}, {"id": "o-1", "extra": 1},
            {"id": "o-1", "n": 1.0}, {"id": "o-1", "n": 1.5}, {"id": "o-1", "n": True},
            {"id": "o-1", "n": 10}, {"id": "o-1", "price": 0}, {"id": "o-1", "price": "1"},
            {"id": "o-1", "tags": ["a", "a"]}, {"id": "o-1", "tags": ["a", "c"]},
            {"id": "o-1", "kind": "y"}, {"id": "o-1", "ok": 1}, {"id": "o-1", "any": None},
            {"id": "o-1", "any": "long"}, {"id": "o-1", "any": 3}, [], "s",
        ],
    ),
    (  # 2020-12 keywords: jsonschema alone
        {"type": "object", "properties": {"t": {"prefixItems": [{"type": "string"}]}}},
        [{"t": ["a"]}, {"t": [1]}, {"t": []}],
    ),
    (  # the tuple form of items differs between drafts: jsonschema alone
        {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]},
        [["a"], [1]],
    ),
]  # fmt: skip


@pytest.mark.parametrize("schema,payloads", SCHEMAS_AND_PAYLOADS)
def test_the_fast_check_agrees_with_jsonschema(schema: dict[str, Any], payloads: list[Any]) -> None:
    compiled = Schema(schema)
    reference = jsonschema.validators.validator_for(schema)(schema)
    for payload in payloads:
        expected = sorted(e.message for e in reference.iter_errors(payload))
        assert sorted(e.message for e in compiled.errors(payload)) == expected, payload
    fast_expected = "prefixItems" not in str(schema) and "draft-07" not in str(schema)
    assert (compiled.fast is not None) == fast_expected
