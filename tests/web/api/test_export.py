"""Export as NDJSON, CSV and Parquet: what was stored comes out, in Log order, only the key's
project, within since/until."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import Env

EVENTS = [
    {"type": "track", "userId": "u1", "event": "Buy", "messageId": "x1",
     "timestamp": "2024-01-01T10:00:00Z", "properties": {"price": 5, "tags": ["a"]}},
    {"type": "identify", "userId": "u1", "messageId": "x2", "timestamp": "2024-01-02T10:00:00Z",
     "traits": {"plan": "pro"}},
    {"type": "page", "anonymousId": "a1", "messageId": "x3", "timestamp": "2024-01-03T10:00:00Z",
     "context": {"page": {"url": "https://shop.example/pricing"}}},
]  # fmt: skip


@pytest.fixture
def stored(env: Env) -> Env:
    response = env.client.post(
        "/v1/batch", json={"batch": EVENTS}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    other = env.runtime.metadata.create_project(1, "other")
    _, key = env.runtime.metadata.create_key(other.slug, "write")
    env.client.post(
        "/v1/batch",
        json={"batch": [dict(EVENTS[0], messageId="elsewhere")]},
        headers={"X-Write-Key": key},
    )
    return env


def export(env: Env, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return env.client.get(
        f"/api/v1/export?{query}", headers={"Authorization": f"Bearer {env.read_key}"}
    )


def test_ndjson_holds_each_event_as_stored(stored: Env) -> None:
    response = export(stored, format="ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["message_id"] for r in rows] == ["x1", "x2", "x3"]  # Log order; not "elsewhere"
    assert rows[0]["properties"] == {"price": 5, "tags": ["a"]}
    assert rows[0]["timestamp"] == "2024-01-01T10:00:00Z"
    assert rows[1]["traits"] == {"plan": "pro"} and rows[2]["path"] == "/pricing"
    assert "project_id" not in rows[0]


def test_csv_and_parquet(stored: Env) -> None:
    text = export(stored, format="csv").text
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["message_id"] for r in table] == ["x1", "x2", "x3"]
    assert json.loads(table[0]["properties"]) == {"price": 5, "tags": ["a"]}
    response = export(stored, format="parquet")
    assert response.status_code == 200
    parquet = pq.read_table(io.BytesIO(response.content))
    assert parquet.column("message_id").to_pylist() == ["x1", "x2", "x3"]
    assert parquet.column("event").to_pylist() == ["Buy", None, None]


def test_since_and_until_bound_the_timestamps(stored: Env) -> None:
    text = export(stored, since="2024-01-02T00:00:00Z", until="2024-01-03T00:00:00Z").text
    assert [json.loads(line)["message_id"] for line in text.splitlines()] == ["x2"]
    assert export(stored, since="2030-01-01T00:00:00Z").text == ""


@pytest.mark.parametrize(
    "params, field",
    [
        ({"format": "xml"}, "format"),
        ({"since": "2024-01-02"}, "since"),
        ({"until": "soon"}, "until"),
    ],
)
def test_bad_parameters_are_refused(env: Env, params: dict[str, str], field: str) -> None:
    response = export(env, **params)
    assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_a_write_key_cannot_export(env: Env) -> None:
    response = env.client.get("/api/v1/export", headers={"X-Write-Key": env.write_key})
    assert response.status_code == 403
