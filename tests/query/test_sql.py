"""The SQL endpoint: read keys only, one project, no files, no network, no writes, limits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env, make_settings, open_env

# The endpoint speaks the Warehouse's SQL: where the engines differ, each has its twin
ENGINE = "clickhouse" if os.environ.get("ROOST_TEST_WAREHOUSE") == "clickhouse" else "duckdb"


@pytest.fixture
def sql_env(tmp_path: Path) -> Iterator[Env]:
    for env in open_env(make_settings(tmp_path, sql_timeout_seconds=1.0, sql_max_rows=50)):
        other = env.runtime.metadata.create_project(1, "other")
        _, other_key = env.runtime.metadata.create_key(other.slug, "write")
        env.client.post(
            "/v1/track",
            json={"userId": "them", "event": "Secret"},
            headers={"X-Write-Key": other_key},
        )
        env.client.post(
            "/v1/track",
            json={"userId": "me", "event": "Mine"},
            headers={"X-Write-Key": env.write_key},
        )
        yield env


def run(env: Env, sql: str, key: str | None = None) -> tuple[int, dict[str, object]]:
    response = env.client.post(
        "/api/v1/sql", json={"sql": sql}, headers={"Authorization": f"Bearer {key or env.read_key}"}
    )
    return response.status_code, response.json()


def test_reads_own_project(sql_env: Env) -> None:
    status, body = run(sql_env, "select event, user_id from events")
    assert status == 200
    assert body == {"columns": ["event", "user_id"], "rows": [["Mine", "me"]], "truncated": False}


def test_write_key_is_refused(sql_env: Env) -> None:
    status, _ = run(sql_env, "select 1", key=sql_env.write_key)
    assert status == 403


def test_unknown_key_is_refused(sql_env: Env) -> None:
    status, _ = run(sql_env, "select 1", key="rr_nope")
    assert status == 401


@pytest.mark.parametrize(
    "sql",
    [
        "select * from roost.events",
        "select * from main.events",
        "select * from temp.events",
        "with events as (select * from roost.events) select * from events",
        "select (select count(*) from roost.events) from events",
        "select * from events union all select * from roost.events",
        "select * from query('select * from roost.events')",
        "select * from query_table('roost.events')",
        "select * from duckdb_tables()",
        "from roost.events",
        "summarize roost.events",
        "describe roost.events",
        "show tables",
        "select * from sqlite_master",
        "select * from information_schema.tables",
        "select * from events e positional join roost.events f",
        "select * from events where event in (from roost.events select event)",
        "select * from events, lateral (select * from roost.events)",
        "with x as (select * from roost.events) select * from x",
        "select * from duckdb_settings()",
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "select * from '/etc/passwd'",
        "select * from read_json('http://127.0.0.1:1/x.json')",
        "select getenv('HOME')",
        "select current_setting('enable_external_access')",
        "insert into events select * from events",
        "delete from events",
        "drop view events",
        "create table t as select 1",
        "attach '/tmp/x.db' as x",
        "copy (select 1) to '/tmp/out.csv'",
        "set enable_external_access = true",
        "pragma database_list",
        "install httpfs",
        "load httpfs",
        "select 1; select 2",
        "call checkpoint()",
        "export database '/tmp/x'",
        "",
    ],
)
def test_escapes_are_refused(sql_env: Env, sql: str) -> None:
    status, body = run(sql_env, sql)
    assert 400 <= status < 500, body
    assert "Secret" not in str(body)


ORDINARY = {
    "duckdb": [
        "with x as (select event from events) select * from x",
        "from events select event",
        "select e.event from events e where e.event in (select event from events)",
        "select * from generate_series(1, 3) g, events",
    ],
    "clickhouse": [
        "select x.event from (select event from events) as x",
        "select e.event from events e where e.event in (select event from events)",
        "select number, event from numbers(3) as g cross join events",
    ],
}
# (a query that runs for minutes, one that makes 1000 rows)
LONG = {
    "duckdb": "select count(*) from range(100000000000) a",
    "clickhouse": "select count(*) from numbers(100000000000) as a",
}
MANY = {"duckdb": "select * from range(1000)", "clickhouse": "select * from numbers(1000)"}
DECIMAL = {"duckdb": "1.5::decimal(4,2)", "clickhouse": "toDecimal32(1.5, 2)"}
FALSE = {"duckdb": (bool, False), "clickhouse": (int, 0)}  # ClickHouse 18 has no boolean type


@pytest.mark.parametrize("sql", ORDINARY[ENGINE])
def test_ordinary_queries_run(sql_env: Env, sql: str) -> None:
    status, body = run(sql_env, sql)
    assert status == 200, body
    assert "Secret" not in str(body) and "Mine" in str(body)


def test_time_limit(sql_env: Env) -> None:
    status, body = run(sql_env, LONG[ENGINE])
    assert status == 400
    assert "time limit" in str(body)


def test_row_limit(sql_env: Env) -> None:
    status, body = run(sql_env, MANY[ENGINE])
    assert status == 200
    assert len(body["rows"]) == 50  # type: ignore[arg-type]
    assert body["truncated"] is True


def test_syntax_error_is_400(sql_env: Env) -> None:
    status, body = run(sql_env, "selec nothing")
    assert status == 400
    assert body["error"]["field"] == "sql"  # type: ignore[index]


def test_json_columns_and_types(sql_env: Env) -> None:
    status, body = run(
        sql_env, f"select properties, received_at, value, bot, {DECIMAL[ENGINE]} as d from events"
    )
    assert status == 200
    row = body["rows"][0]  # type: ignore[index]
    assert (
        row[0] == "{}"
        and isinstance(row[1], str)
        and row[2] is None
        and (type(row[3]), row[3]) == FALSE[ENGINE]
        and row[4] == 1.5
    )
