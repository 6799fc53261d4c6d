"""An SQL answer is bounded in rows and bytes, cut (`truncated`) rather than built whole,
within one time limit for running and reading; on DuckDB and ClickHouse alike."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.conftest import Env, make_settings, open_env


def ask(env: Env, sql: str) -> Any:
    return env.client.post(
        "/api/v1/sql", json={"sql": sql}, headers={"Authorization": f"Bearer {env.read_key}"}
    )


def test_a_huge_answer_is_cut_to_the_byte_limit(tmp_path: Path) -> None:
    settings = replace(make_settings(tmp_path), sql_max_bytes=1 << 20)
    for env in open_env(settings):
        if settings.warehouse_url.startswith("clickhouse"):
            wide = "select arrayStringConcat(arrayMap(x -> 'x', range(100000))) as s, "
            wide += "arrayJoin(range(1000)) as n"
        else:
            wide = "select repeat('x', 100000) as s, range as n from range(1000)"
        answer = ask(env, wide)
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        assert body["truncated"] is True
        assert 1 <= len(body["rows"]) <= 11  # about 1 MiB of 100 kB strings
        assert len(answer.content) < 2 << 20
        assert [r[1] for r in body["rows"]] == list(range(len(body["rows"])))
        numbers = "select arrayJoin(range({})) as n" if settings.warehouse_url.startswith("clickhouse") else "select range as n from range({})"  # fmt: skip
        small = ask(env, numbers.format(5)).json()
        assert (small["truncated"], len(small["rows"])) == (False, 5)
        rows = ask(env, numbers.format(20000)).json()
        assert (rows["truncated"], len(rows["rows"])) == (True, settings.sql_max_rows)
