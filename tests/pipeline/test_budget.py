"""Monthly budgets: counted exactly in stored events, refused per dialect, survive restarts."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import make_settings, open_env


def game_event(name: str = "Start:Run") -> dict[str, object]:
    return {
        "build_version": "1.0",
        "session_id": str(uuid.uuid4()),
        "player_hash": "p" * 32,
        "ts": "2026-01-01T00:00:00Z",
        "type": "progression",
        "name": name,
    }


def test_budget_counts_exactly_and_refuses_per_dialect(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for env in open_env(settings):
        ws = env.runtime.metadata.create_workspace("capped", "enterprise", monthly_budget=5)
        env.runtime.metadata.create_project(ws.id, "capped-game")
        _, key = env.runtime.metadata.create_key("capped-game", "write")
        _, read = env.runtime.metadata.create_key("capped-game", "read")
        headers = {"Authorization": f"Bearer {key}"}
        # A duplicate and an invalid event do not use the budget.
        batch = {
            "batch": [
                {"type": "track", "userId": "u", "event": "A", "messageId": "x"},
                {"type": "track", "userId": "u", "event": "A", "messageId": "x"},
                {"type": "track", "event": "no id"},
            ]
        }
        assert env.client.post("/v1/batch", json=batch, headers=headers).json()["accepted"] == 2
        # One stored, four left: a batch of five stores four and rejects one with tier_limit.
        body = env.client.post(
            "/api/v1/events", json={"events": [game_event()] * 5}, headers=headers
        ).json()
        assert body["accepted"] == 4
        assert [(e["index"], e["code"]) for e in body["errors"]] == [(4, "tier_limit")]
        # Spent: the game dialect answers 200 with reason tier_limit, the others a 429.
        spent = env.client.post(
            "/api/v1/events", json={"events": [game_event()] * 2}, headers=headers
        )
        assert spent.status_code == 200
        assert {k: v for k, v in spent.json().items() if k != "errors"} == {
            "accepted": 0, "rejected": 2, "reason": "tier_limit",
        }  # fmt: skip
        assert [e["code"] for e in spent.json()["errors"]] == ["tier_limit"]
        segment = env.client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=headers)
        assert segment.status_code == 429
        assert segment.json()["code"] == "tier_limit"
        assert "retry-after" in segment.headers
        assert env.sql("select count(*) as n from events", key=read) == [{"n": 5}]
    # After a restart the usage is read back from the store: still spent.
    for env in open_env(settings):
        _, key = env.runtime.metadata.create_key("capped-game", "write")
        response = env.client.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers={"X-Write-Key": key}
        )
        assert response.status_code == 429
        env.runtime.metadata.update_workspace("capped", monthly_budget=6)
        env.runtime.keys._cache.clear()
        response = env.client.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers={"X-Write-Key": key}
        )
        assert response.status_code == 200


def test_notices_at_80_and_100_percent(tmp_path: Path) -> None:
    from roost import metrics

    def notices(workspace: int, threshold: str) -> float:
        return metrics.BUDGET_NOTICES.labels(str(workspace), threshold)._value.get()

    for env in open_env(make_settings(tmp_path)):
        ws = env.runtime.metadata.create_workspace("noticed", "enterprise", monthly_budget=10)
        env.runtime.metadata.create_project(ws.id, "noticed-site")
        _, key = env.runtime.metadata.create_key("noticed-site", "write")
        headers = {"X-Write-Key": key}
        item = {"type": "track", "userId": "u", "event": "E"}
        before = notices(ws.id, "80"), notices(ws.id, "100")
        env.client.post("/v1/batch", json={"batch": [item] * 7}, headers=headers)
        assert (notices(ws.id, "80"), notices(ws.id, "100")) == before
        env.client.post("/v1/batch", json={"batch": [item] * 1}, headers=headers)
        assert notices(ws.id, "80") == before[0] + 1
        env.client.post("/v1/batch", json={"batch": [item] * 2}, headers=headers)
        env.client.post("/v1/batch", json={"batch": [item] * 1}, headers=headers)  # refused: spent
        assert (notices(ws.id, "80"), notices(ws.id, "100")) == (before[0] + 1, before[1] + 1)
