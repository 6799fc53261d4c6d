"""While the Warehouse cannot load (a full disk), an SQL answer says it is behind the
acknowledged Log, or is refused with 503 when a consistent answer is asked for."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import Env


def ask(env: Env, consistent: bool = False) -> Any:
    suffix = "?consistent=true" if consistent else ""
    return env.client.post(
        f"/api/v1/sql{suffix}",
        json={"sql": "select count(*) from events"},
        headers={"Authorization": f"Bearer {env.read_key}"},
    )


def test_an_answer_from_a_warehouse_behind_the_log_says_so(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ask(env)
    assert first.status_code == 200 and "behind" not in first.json()
    assert first.headers["X-Roost-Behind"] == "0"

    def full_disk(groups: Sequence[Any]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(env.runtime.warehouse, "load", full_disk)
    for n in range(3):
        sent = env.client.post(
            "/v1/track", json={"userId": "u", "event": f"E{n}"},
            headers={"X-Write-Key": env.write_key},
        )  # fmt: skip
        assert sent.status_code == 200
    stale = ask(env)
    assert stale.status_code == 200
    assert stale.json()["rows"] == [[0]] and stale.json()["behind"] == 3
    assert stale.headers["X-Roost-Behind"] == "3"
    refused = ask(env, consistent=True)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "warehouse_behind"
    assert "3 events behind" in refused.json()["error"]["message"]

    monkeypatch.undo()
    deadline = time.monotonic() + 15
    while (answer := ask(env, consistent=True)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
    assert answer.json()["rows"] == [[3]] and "behind" not in answer.json()
