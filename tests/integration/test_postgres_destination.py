"""The PostgreSQL warehouse destination against a real PostgreSQL: Segment's schema, new
columns, type conflicts, and a replay that leaves every table as the first pass did."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from roost.devtools.servers import Postgres
from tests.conftest import Env

pytestmark = pytest.mark.slow


def admin(env: Env) -> dict[str, str]:
    _, raw = env.runtime.metadata.create_key("default", "admin")
    return {"Authorization": f"Bearer {raw}"}


def send(env: Env, *events: dict[str, Any]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": list(events)}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def delivered(env: Env, count: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = env.client.get(
            "/api/v1/destinations", headers={"X-Write-Key": env.read_key}
        ).json()["destinations"][0]
        if found["delivered"] >= count or time.monotonic() > deadline:
            return dict(found)
        time.sleep(0.05)


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def columns(dsn: str, schema: str, table: str) -> dict[str, str]:
    found = rows(
        dsn,
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}'",
    )
    return dict(found)  # type: ignore[arg-type]


EVENTS = [
    {
        "type": "identify",
        "userId": "u1",
        "messageId": "i1",
        "traits": {"plan": "free", "email": "a@x"},
    },
    {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "messageId": "t1",
        "properties": {"revenue": 10, "currency": "EUR", "item": {"sku": "A1"}, "tags": ["x"]},
        "context": {"page": {"path": "/checkout"}},
    },
    {
        "type": "page",
        "userId": "u1",
        "name": "Home",
        "messageId": "p1",
        "properties": {"title": "Hi"},
    },
    {"type": "screen", "userId": "u1", "name": "Settings", "messageId": "s1"},
    {
        "type": "group",
        "userId": "u1",
        "groupId": "g1",
        "messageId": "g1",
        "traits": {"name": "Acme"},
    },
    {"type": "alias", "userId": "u1", "previousId": "anon-1", "messageId": "a1"},
    {"type": "identify", "userId": "u1", "messageId": "i2", "traits": {"plan": "pro"}},
]


def test_events_land_in_segments_warehouse_schema_and_replay_changes_nothing(
    env: Env, postgres: Postgres
) -> None:
    schema = f"shop_{uuid.uuid4().hex[:8]}"
    response = env.client.request(
        "PUT",
        "/api/v1/admin/destinations/pg",
        json={"kind": "postgres", "dsn": postgres.dsn, "schema": schema, "batch_seconds": 0.05},
        headers=admin(env),
    )
    assert response.status_code == 200, response.text
    send(env, *EVENTS)
    assert delivered(env, len(EVENTS))["delivered"] == len(EVENTS)
    dsn = postgres.dsn
    # the trace says what happened: delivered to PostgreSQL, the row there under its id
    traced = env.client.get("/api/v1/events/i1/trace", headers={"X-Write-Key": env.read_key})
    (pg,) = traced.json()["destinations"]
    assert (pg["name"], pg["kind"], pg["status"], pg["attempts"]) == (
        "pg",
        "postgres",
        "delivered",
        1,
    )
    assert ("i1",) in rows(dsn, f"select id from {schema}.identifies")
    tables = {
        r[0]
        for r in rows(
            dsn, f"select table_name from information_schema.tables where table_schema = '{schema}'"
        )
    }
    assert tables == {
        "tracks", "order_completed", "identifies", "users", "pages", "screens", "groups",
        "aliases", "roost_type_conflicts",
    }  # fmt: skip
    order = columns(dsn, schema, "order_completed")
    assert order["revenue"] == "numeric" and order["currency"] == "text"
    assert order["item_sku"] == "text" and order["tags"] == "text"
    assert order["context_page_path"] == "text" and order["timestamp"] == "timestamp with time zone"
    assert rows(
        dsn,
        f"select id, revenue, currency, item_sku, tags, event, event_text from {schema}.order_completed",
    ) == [("t1", 10, "EUR", "A1", '["x"]', "order_completed", "Order Completed")]
    assert rows(dsn, f"select id, event from {schema}.tracks") == [("t1", "order_completed")]
    assert rows(dsn, f"select id, plan, email from {schema}.users") == [("u1", "pro", "a@x")]
    assert rows(dsn, f"select id, name, title from {schema}.pages") == [("p1", "Home", "Hi")]
    assert rows(dsn, f"select id, name from {schema}.screens") == [("s1", "Settings")]
    assert rows(dsn, f"select group_id, name from {schema}.groups") == [("g1", "Acme")]
    assert rows(dsn, f"select previous_id, user_id from {schema}.aliases") == [("anon-1", "u1")]

    # A new property adds a column; a string where numbers were turns the column into text.
    send(
        env,
        {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "t2",
         "properties": {"revenue": 5, "coupon": "C"}},
        {"type": "track", "userId": "u3", "event": "Order Completed", "messageId": "t3",
         "properties": {"revenue": "ten"}},
    )  # fmt: skip
    delivered(env, len(EVENTS) + 2)
    order = columns(dsn, schema, "order_completed")
    assert order["coupon"] == "text" and order["revenue"] == "text"
    assert rows(dsn, f"select id, revenue, coupon from {schema}.order_completed order by id") == [
        ("t1", "10", None),
        ("t2", "5", "C"),
        ("t3", "ten", None),
    ]
    assert rows(
        dsn,
        f"select table_name, column_name, column_type, value_type from {schema}.roost_type_conflicts",
    ) == [("order_completed", "revenue", "numeric", "text")]

    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        return {
            t: rows(dsn, f"select * from {schema}.{t} order by 1")
            for t in sorted(tables - {"roost_type_conflicts"})
        }

    before = snapshot()
    replay = env.client.post(
        "/api/v1/admin/destinations/pg/replay", json={"from_offset": 1}, headers=admin(env)
    )
    assert replay.status_code == 200
    delivered(env, 2 * (len(EVENTS) + 2))
    assert snapshot() == before  # keyed by messageId: the second pass adds and changes nothing
