"""Audiences against SQL written here: a generated history sent in rounds, and after each
round the members Roost keeps (incrementally) equal the people a SQL query over the same
events finds; an audience defined afterwards is backfilled to the same answer; a changed one
is counted again, a removed one empties; days leaving the window move people out (and in);
an erased user leaves every audience."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from roost.consumers import audience_events
from roost.storage.metadata import project_config
from roost.storage.metadata.audiences import counts, outbox, seen
from roost.storage.metadata.audiences import members as member_rows
from roost.storage.warehouse.flavor import DuckDBFlavor
from tests.conftest import Env
from tests.integration.receiver import Receiver

USERS = [f"user{i}" for i in range(10)]
PRO_BUYERS = {
    "name": "Pro buyers",
    "conditions": [
        {"trait": "plan", "in": ["pro"]},
        {"performed": "Order Completed", "at_least": 2, "within_days": 30,
         "where": {"currency": "EUR"}},
        {"not_performed": "Churned", "within_days": 30},
    ],
}  # fmt: skip
# the same audience in SQL: the last plan an identify gave, EUR orders and churns in the
# window of 30 days ending today (UTC)
PRO_BUYERS_SQL = """
WITH plans AS (
  SELECT user_id AS p, arg_max(traits->>'plan', log_offset) AS plan FROM events
  WHERE type = 'identify' AND traits->>'plan' IS NOT NULL GROUP BY user_id),
bought AS (
  SELECT user_id AS p, count(*) AS n FROM events
  WHERE event = 'Order Completed' AND properties->>'currency' = 'EUR'
    AND CAST(timestamp AS DATE) >= current_date - 29 GROUP BY user_id),
churned AS (
  SELECT DISTINCT user_id AS p FROM events
  WHERE event = 'Churned' AND CAST(timestamp AS DATE) >= current_date - 29)
SELECT p FROM plans JOIN bought USING (p)
WHERE plan = 'pro' AND n >= 2 AND p NOT IN (SELECT p FROM churned) ORDER BY p
"""
LOYAL = {"name": "Loyal", "conditions": [{"not_performed": "Churned", "within_days": 7}]}
LOYAL_SQL = """
SELECT DISTINCT user_id AS p FROM events WHERE user_id NOT IN (
  SELECT user_id FROM events WHERE event = 'Churned'
  AND CAST(timestamp AS DATE) >= current_date - 6) ORDER BY p
"""


def send(env: Env, batch: list[dict[str, Any]]) -> None:
    response = env.client.post("/v1/batch", json={"batch": batch},
                               headers={"X-Write-Key": env.write_key})  # fmt: skip
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def members(env: Env, name: str) -> list[str]:
    response = env.client.get(f"/api/v1/audiences/{name}/members",
                              headers={"Authorization": f"Bearer {env.read_key}"})  # fmt: skip
    assert response.status_code == 200, response.text
    return sorted(m["person"] for m in response.json()["members"])


def expected(env: Env, sql: str) -> list[str]:
    return [r["p"] for r in env.sql(sql)]


def configure(env: Env, audiences: list[dict[str, Any]]) -> None:
    project = env.runtime.metadata.project("default").id
    project_config.apply(env.runtime.config_stores(), project, {"audiences": audiences})
    env.runtime.audience_definitions.forget()  # read again now, not after the cache's second


def history(rng: random.Random, round_: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    batch = []
    for i in range(25):
        user = rng.choice(USERS)
        when = now - timedelta(
            days=rng.choice([0, 1, 5, 12, 29, 31, 40]), minutes=rng.randint(0, 600)
        )
        kind = rng.random()
        message = {"userId": user, "messageId": f"r{round_}-{i}",
                   "timestamp": when.isoformat().replace("+00:00", "Z")}  # fmt: skip
        if kind < 0.25:
            message |= {"type": "identify", "traits": {"plan": rng.choice(["pro", "free"])}}
        elif kind < 0.85:
            message |= {"type": "track", "event": "Order Completed",
                        "properties": {"currency": rng.choice(["EUR", "EUR", "USD"])}}  # fmt: skip
        else:
            message |= {"type": "track", "event": "Churned"}
        batch.append(message)
    return batch


def test_members_equal_sql_at_every_step_backfilled_changed_and_removed(env: Env) -> None:
    if not isinstance(env.runtime.warehouse.flavor, DuckDBFlavor):
        pytest.skip("the SQL below is DuckDB's (the SQL endpoint's); the backfill runs on "
                    "ClickHouse in the tests below")  # fmt: skip
    rng = random.Random(20261206)
    configure(env, [PRO_BUYERS])
    seen_members = set()
    for round_ in range(6):
        send(env, history(rng, round_))
        got = members(env, "Pro buyers")
        assert got == expected(env, PRO_BUYERS_SQL), f"round {round_}"
        seen_members |= set(got)
    assert seen_members, "the history made no member: the test would prove nothing"
    # defined after the history: backfilled from the Warehouse
    configure(env, [PRO_BUYERS, LOYAL])
    assert members(env, "Loyal") == expected(env, LOYAL_SQL)
    assert members(env, "Pro buyers") == expected(env, PRO_BUYERS_SQL)
    # changed: counted again for the new definition
    changed = {**PRO_BUYERS, "conditions": [PRO_BUYERS["conditions"][1]]}
    configure(env, [changed, LOYAL])
    anyone = ("SELECT user_id AS p FROM events WHERE event = 'Order Completed' AND "
              "properties->>'currency' = 'EUR' AND CAST(timestamp AS DATE) >= current_date - 29 "
              "GROUP BY user_id HAVING count(*) >= 2 ORDER BY p")  # fmt: skip
    assert members(env, "Pro buyers") == expected(env, anyone)
    # removed: its members exit (their profiles say when)
    before = members(env, "Loyal")
    configure(env, [changed])
    env.runtime.consumers.audiences.poke()
    listed = env.client.get(
        "/api/v1/audiences", headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert [a["name"] for a in listed.json()["audiences"]] == ["Pro buyers"]
    profile = env.client.get(f"/api/v1/profiles/{before[0]}",
                             headers={"Authorization": f"Bearer {env.read_key}"}).json()  # fmt: skip
    loyal = [a for a in profile["audiences"] if a["name"] == "Loyal"]
    assert loyal and all(a["exited_at"] is not None for a in loyal)


def test_days_leaving_the_window_move_people_out_and_in(env: Env) -> None:
    now = datetime.now(UTC)
    stamp = now.isoformat().replace("+00:00", "Z")
    send(env, [
        {"type": "track", "userId": "a", "event": "Order Completed", "timestamp": stamp},
        {"type": "track", "userId": "b", "event": "Churned", "timestamp": stamp},
    ])  # fmt: skip
    configure(env, [
        {"name": "Buyers", "conditions": [{"performed": "Order Completed", "within_days": 7}]},
        {"name": "Quiet", "conditions": [{"not_performed": "Churned", "within_days": 7}]},
    ])  # fmt: skip
    assert members(env, "Buyers") == ["a"] and members(env, "Quiet") == ["a"]
    consumer = env.runtime.consumers.audiences
    consumer.clock = lambda: datetime.now(UTC).replace(tzinfo=None) + timedelta(days=8)
    consumer.catch_up()
    assert members(env, "Buyers") == [] and members(env, "Quiet") == ["a", "b"]


def test_a_groups_traits_move_its_members(env: Env) -> None:
    """u1 and u2 join acme; acme becomes gold (a group call by u2): both enter; it becomes
    silver (a call by someone else again): both leave."""
    configure(env, [{"name": "Gold", "conditions": [{"group_trait": "tier", "in": ["gold"]}]}])
    send(env, [{"type": "group", "userId": u, "groupId": "acme", "traits": {"tier": "silver"}}
               for u in ("u1", "u2")])  # fmt: skip
    assert members(env, "Gold") == []
    send(env, [{"type": "group", "userId": "u2", "groupId": "acme", "traits": {"tier": "gold"}}])
    assert members(env, "Gold") == ["u1", "u2"]
    send(env, [{"type": "group", "userId": "u3", "groupId": "acme", "traits": {"tier": "silver"}}])
    assert members(env, "Gold") == []


def test_an_erased_user_leaves_every_audience(env: Env) -> None:
    configure(env, [{"name": "Buyers", "conditions": [{"performed": "Order Completed"}]}])
    send(env, [{"type": "track", "userId": u, "event": "Order Completed"} for u in ("a", "b")])
    assert members(env, "Buyers") == ["a", "b"]
    _, delete_key = env.runtime.metadata.create_key("default", "delete")
    erased = env.client.request("DELETE", "/api/v1/users/a",
                                headers={"Authorization": f"Bearer {delete_key}"})  # fmt: skip
    assert erased.status_code == 200, erased.text
    assert members(env, "Buyers") == ["b"]
    with env.runtime.metadata.engine.connect() as conn:
        for table, column in ((counts, counts.c.who), (seen, seen.c.who),
                              (member_rows, member_rows.c.person)):  # fmt: skip
            assert conn.execute(table.select().where(column == "a")).first() is None


def test_entries_and_exits_reach_webhooks_exactly_once_each(env: Env) -> None:
    """As tracks (the default), and as identify traits where the destination says so."""
    tracks, traits = Receiver().start(), Receiver().start()
    try:
        _, admin = env.runtime.metadata.create_key("default", "admin")
        fast = {"kind": "webhook", "batch_seconds": 0.05, "retry_base_seconds": 0.02,
                "retry_max_seconds": 0.1}  # fmt: skip
        for name, spec in (
            (
                "hook",
                {**fast, "url": tracks.url, "events": ["Audience Entered", "Audience Exited"]},
            ),
            ("crm", {**fast, "url": traits.url, "types": ["identify"], "audiences": "identify"}),
        ):
            made = env.client.request("PUT", f"/api/v1/admin/destinations/{name}", json=spec,
                                      headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
            assert made.status_code == 200, made.text
        configure(env, [{"name": "Pro plan", "conditions": [{"trait": "plan", "in": ["pro"]}]}])
        send(env, [{"type": "identify", "userId": "ada", "traits": {"plan": "pro"}}])
        assert members(env, "Pro plan") == ["ada"]
        send(env, [{"type": "identify", "userId": "ada", "traits": {"plan": "free"}}])
        assert members(env, "Pro plan") == []
        tracks.wait_for(4)
        traits.wait_for(4)
        time.sleep(0.5)  # nothing more comes
        sent = [e for e in tracks.events() if e["type"] == "track"]  # (identifies pass too)
        assert [(e["event"], e["userId"], e["properties"]["audience_key"],
                 e["properties"]["pro_plan"]) for e in sent] == [
            ("Audience Entered", "ada", "pro_plan", True),
            ("Audience Exited", "ada", "pro_plan", False),
        ]  # fmt: skip
        assert len({e["messageId"] for e in sent}) == 2
        as_traits = [e["traits"] for e in traits.events() if "pro_plan" in e["traits"]]
        assert as_traits == [{"pro_plan": True}, {"pro_plan": False}]
        assert all(e["type"] == "identify" for e in traits.events())
        # in the Warehouse too, once each
        rows = env.sql("SELECT event FROM events WHERE dialect = 'audience' ORDER BY event")
        assert [r["event"] for r in rows] == ["Audience Entered", "Audience Exited"]
    finally:
        for receiver in (tracks, traits):
            receiver.release()
            receiver.stop()


def test_an_entry_is_appended_once_even_if_the_outbox_row_outlived_it(env: Env) -> None:
    """The server stopped between the append and the outbox row's removal: the drain finds
    the messageId known and appends nothing again."""
    configure(env, [{"name": "Pro plan", "conditions": [{"trait": "plan", "in": ["pro"]}]}])
    send(env, [{"type": "identify", "userId": "bo", "traits": {"plan": "pro"}}])
    assert members(env, "Pro plan") == ["bo"]
    deadline = time.monotonic() + 5
    while env.runtime.audience_store.waiting(10) and time.monotonic() < deadline:
        time.sleep(0.05)
    with env.runtime.metadata.engine.begin() as conn:  # the row again, as if never removed
        conn.execute(outbox.insert().values(project_id=env.runtime.metadata.project("default").id,
                                            person="bo", audience="Pro plan",
                                            entered_at=env.runtime.audience_store.of_person(
                                                env.runtime.metadata.project("default").id, "bo")[0].entered_at,
                                            exited_at=None))  # fmt: skip
    assert env.portal is not None
    assert env.portal.call(audience_events.drain, env.runtime) == 1  # taken, not appended
    assert env.runtime.audience_store.waiting(10) == []
    env.client.get("/api/v1/audiences", headers={"Authorization": f"Bearer {env.read_key}"})
    entered = env.sql("SELECT count(*) AS n FROM events WHERE event = 'Audience Entered'")
    assert entered == [{"n": 1}]
