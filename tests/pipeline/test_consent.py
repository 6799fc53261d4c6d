"""Storage consent against the tracking plan and the dialects: an event refused or stripped
for consent is never a contract violation; a rule written for Segment events leaves alone the
dialects that cannot carry consent unless the project says so; Segment's campaign, device
and OS are report dimensions like the web dialect's."""

from __future__ import annotations

from typing import Any

from tests.conftest import Env
from tests.pipeline.test_transform import batch, configure

ORDER = {"type": "object", "properties": {"revenue": {"type": "number"}}, "required": ["revenue"]}
NO_CONSENT = {"consent": {"categoryPreferences": {"Analytics": False}}}
CONSENT = {"consent": {"categoryPreferences": {"Analytics": True}}}


def violations(env: Env) -> dict[Any, int]:
    return dict(env.runtime.contracts.violations)


def plan_holds(env: Env) -> None:
    """The plan is in force: a consenting order without revenue is blocked, counted."""
    answer = batch(env, {"event": "Order", "messageId": "z", "properties": {}, "context": CONSENT})
    assert [e["code"] for e in answer["errors"]] == ["contract_violation"], answer
    assert sum(violations(env).values()) == 1


def test_an_event_refused_for_consent_is_no_contract_violation(env: Env) -> None:
    configure(env, "consent", {"categories": ["Analytics"], "action": "refuse"})
    planned = configure(
        env, "config", {"contracts": [{"target": "Order", "schema": ORDER, "action": "block"}]}
    )
    assert planned.status_code == 200, planned.text
    answer = batch(
        env, {"event": "Order", "messageId": "a", "properties": {}, "context": NO_CONSENT}
    )
    assert [e["code"] for e in answer["errors"]] == ["consent_required"]
    assert violations(env) == {}
    plan_holds(env)


def test_an_event_stripped_for_consent_is_checked_as_it_was_sent(env: Env) -> None:
    configure(env, "consent", {"categories": ["Analytics"], "action": "strip"})
    planned = configure(
        env, "config", {"contracts": [{"target": "Order", "schema": ORDER, "action": "block"}]}
    )
    assert planned.status_code == 200, planned.text
    answer = batch(
        env,
        {"event": "Order", "messageId": "a", "properties": {"revenue": 5}, "context": NO_CONSENT},
    )
    assert answer["accepted"] == 1, answer  # its revenue was there: not blocked for lacking it
    assert violations(env) == {}
    assert env.sql("select properties from events") == [{"properties": "{}"}]  # then stripped
    plan_holds(env)


def pageview(env: Env) -> None:
    answer = env.client.post(
        "/api/v1/events/custom",
        json={"site_id": "default", "url": "https://a.example/", "event_name": "signup",
              "props": {"plan": "pro"}},
        headers={"Authorization": f"Bearer {env.write_key}"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text


def test_a_consent_rule_leaves_dialects_without_consent_alone_unless_told(env: Env) -> None:
    configure(env, "consent", {"categories": ["Analytics"], "action": "strip"})
    pageview(env)
    batch(env, {"event": "Seg", "messageId": "s", "properties": {"plan": "pro"}})
    assert env.sql("select dialect, properties from events order by dialect") == [
        {"dialect": "segment", "properties": "{}"},  # Segment carries consent: none given
        {"dialect": "web", "properties": '{"plan":"pro"}'},
    ]
    told = configure(
        env, "consent", {"categories": ["Analytics"], "action": "strip", "dialects": ["web"]}
    )
    assert told.status_code == 200, told.text
    pageview(env)
    rows = env.sql("select properties from events where dialect = 'web' order by log_offset")
    assert [r["properties"] for r in rows] == ['{"plan":"pro"}', "{}"]
    bad = configure(env, "consent", {"categories": ["Analytics"], "dialects": ["carrier-pigeon"]})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "consent.dialects"


def test_segment_campaign_device_and_os_are_report_dimensions(env: Env) -> None:
    batch(env, {
        "type": "page", "name": "Home", "anonymousId": "a1", "messageId": "p1",
        "context": {"campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
                    "device": {"type": "ios"}, "os": {"name": "iOS"}},
    })  # fmt: skip
    answer = env.client.post(
        "/api/v1/query",
        json={"metrics": ["pageviews"], "dimensions": ["utm_source", "utm_campaign", "device", "os"],
              "date_range": "all"},
        headers={"Authorization": f"Bearer {env.read_key}"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [
        {"dimensions": ["newsletter", "spring", "ios", "iOS"], "metrics": [1]}
    ]
