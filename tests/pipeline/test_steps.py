"""The transformation language, step by step, and the errors a bad step is refused with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from roost.errors import BadRequest
from roost.model import Event
from roost.pipeline.steps import compile_step, compile_steps

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(**fields: Any) -> Event:
    base: dict[str, Any] = {
        "message_id": "m1",
        "project_id": 1,
        "dialect": "segment",
        "type": "track",
        "event": "Signup",
        "timestamp": NOW,
        "received_at": NOW,
        "properties": {"plan": "free", "price": 10, "user": {"first": "Ada", "last": "L"}},
        "context": {"page": {"path": "/pricing"}},
    }
    return Event(**{**base, **fields})


def run(spec: dict[str, Any], e: Event | None = None) -> Event | None:
    return compile_step(spec, "t[0]").apply(e or event())


def test_rename_event_only_renames_that_event() -> None:
    out = run({"step": "rename_event", "from": "Signup", "to": "Signed Up"})
    assert out is not None and out.event == "Signed Up"
    other = run({"step": "rename_event", "from": "Login", "to": "Logged In"})
    assert other is not None and other.event == "Signup"


def test_rename_property_moves_the_value_and_leaves_the_original_event_intact() -> None:
    original = event()
    out = run({"step": "rename_property", "from": "price", "to": "revenue"}, original)
    assert out is not None
    assert out.properties["revenue"] == 10 and "price" not in out.properties
    assert original.properties["price"] == 10  # copies, never the given dicts
    nested = run({"step": "rename_property", "from": "user.first", "to": "traits.first_name"})
    assert nested is not None
    assert nested.traits == {"first_name": "Ada"}
    assert nested.properties["user"] == {"last": "L"}


def test_drop_property_takes_one_name_or_a_list() -> None:
    out = run({"step": "drop_property", "name": ["plan", "context.page.path"]})
    assert out is not None
    assert "plan" not in out.properties and out.context == {"page": {}}
    missing = run({"step": "drop_property", "name": "nope"})
    assert missing is not None and missing.properties == event().properties


def test_set_property_renders_templates_from_other_fields() -> None:
    out = run(
        {
            "step": "set_property",
            "name": "full_name",
            "value": "{properties.user.first} {properties.user.last}",
        }
    )
    assert out is not None and out.properties["full_name"] == "Ada L"
    typed = run({"step": "set_property", "name": "cost", "value": "{properties.price}"})
    assert typed is not None and typed.properties["cost"] == 10  # one placeholder keeps the type
    where = run({"step": "set_property", "name": "traits.seen_on", "value": "{context.page.path}"})
    assert where is not None and where.traits == {"seen_on": "/pricing"}
    literal = run({"step": "set_property", "name": "n", "value": 3})
    assert literal is not None and literal.properties["n"] == 3
    absent = run({"step": "set_property", "name": "x", "value": "<{properties.none}>"})
    assert absent is not None and absent.properties["x"] == "<>"


@pytest.mark.parametrize(
    ("when", "dropped"),
    [
        ({"field": "properties.plan", "equals": "free"}, True),
        ({"field": "properties.plan", "not_equals": "free"}, False),
        ({"field": "properties.plan", "in": ["pro", "free"]}, True),
        ({"field": "properties.plan", "not_in": ["free"]}, False),
        ({"field": "properties.coupon", "exists": False}, True),
        ({"field": "properties.price", "gt": 9.5}, True),
        ({"field": "properties.price", "lte": 9}, False),
        ({"field": "properties.plan", "gt": 5}, False),  # a string is not compared with a number
        ({"field": "context.page.path", "contains": "pric"}, True),
        ({"field": "event", "matches": "^Sign"}, True),
        ({"field": "userId", "exists": True}, False),
        (
            {"all": [{"field": "type", "equals": "track"}, {"field": "properties.price", "lt": 5}]},
            False,
        ),
        (
            {
                "any": [
                    {"field": "type", "equals": "page"},
                    {"field": "properties.price", "gte": 10},
                ]
            },
            True,
        ),
        ({"not": {"field": "properties.plan", "equals": "free"}}, False),
    ],
)
def test_filter_drops_the_events_its_condition_matches(when: dict[str, Any], dropped: bool) -> None:
    assert (run({"step": "filter", "when": when}) is None) is dropped


def test_when_limits_a_step_to_the_events_it_matches() -> None:
    spec = {
        "step": "set_property",
        "name": "tier",
        "value": "paid",
        "when": {"field": "properties.plan", "equals": "pro"},
    }
    out = run(spec)
    assert out is not None and "tier" not in out.properties
    pro = run(spec, event(properties={"plan": "pro"}))
    assert pro is not None and pro.properties["tier"] == "paid"


def test_sample_keeps_the_rate_and_gives_one_event_the_same_answer_every_time() -> None:
    step = compile_step({"step": "sample", "rate": 0.25}, "t[0]")
    kept = [step.apply(event(message_id=f"m{i}")) is not None for i in range(4000)]
    assert 0.2 < sum(kept) / len(kept) < 0.3
    again = [step.apply(event(message_id=f"m{i}")) is not None for i in range(4000)]
    assert kept == again


@pytest.mark.parametrize(
    ("spec", "field", "rule"),
    [
        ({"step": "explode"}, "transformations[0].step", "must be one of"),
        ({"step": "rename_event", "to": "x"}, "transformations[0].from", "is required"),
        ({"step": "rename_event", "from": "a", "to": ""}, "transformations[0].to", "non-empty"),
        ({"step": "filter"}, "transformations[0].when", "is required"),
        ({"step": "sample", "rate": 0}, "transformations[0].rate", "above 0"),
        ({"step": "sample", "rate": True}, "transformations[0].rate", "above 0"),
        ({"step": "drop_property", "name": ""}, "transformations[0].name", "field path"),
        (
            {"step": "filter", "when": {"field": "properties.x", "equals": 1, "in": [1]}},
            "transformations[0].when",
            "exactly one of",
        ),
        (
            {"step": "filter", "when": {"field": "properties.x", "in": 3}},
            "transformations[0].when.in",
            "must be a list",
        ),
        (
            {"step": "filter", "when": {"field": "properties.x", "matches": "("}},
            "transformations[0].when.matches",
            "regular expression",
        ),
        (
            {"step": "filter", "when": {"field": "nonsense", "equals": 1}},
            "transformations[0].when.field",
            "not a field of the event",
        ),
        (
            {"step": "filter", "when": {"all": []}},
            "transformations[0].when.all",
            "non-empty list",
        ),
        ({"step": "function", "name": "no_such"}, "transformations[0].name", "no function"),
    ],
)
def test_a_bad_step_is_refused_naming_its_field(
    spec: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_steps([spec])
    assert caught.value.field == field
    assert rule in caught.value.message
