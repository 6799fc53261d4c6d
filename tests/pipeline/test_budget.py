"""Monthly budgets: counted exactly in stored events, refused per dialect, survive restarts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from roost.devtools.servers import free_port
from roost.errors import BadRequest
from roost.storage.metadata.notices import checked
from tests.conftest import Env, make_settings, open_env
from tests.integration.receiver import Receiver
from tests.web.dashboard.conftest import person


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


class Mailbox:
    """An aiosmtpd handler keeping what it is sent."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def wait_for(found: Callable[[], int], n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while found() < n:
        assert time.monotonic() < deadline, f"{found()} of {n}"
        time.sleep(0.02)
    time.sleep(0.3)  # and no more than n come
    assert found() == n


def test_notices_at_80_and_100_percent_by_email_and_webhook_once(tmp_path: Path) -> None:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hook = Receiver().start()
    settings = make_settings(tmp_path)
    item = {"type": "track", "userId": "u", "event": "E"}
    try:
        for env in open_env(settings):
            ws = env.runtime.metadata.create_workspace("noticed", "enterprise", monthly_budget=10)
            env.runtime.metadata.create_project(ws.id, "noticed-site")
            _, key = env.runtime.metadata.create_key("noticed-site", "write")
            env.runtime.notices.set_channels(ws.id, checked({
                "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "none",
                "mail_from": "roost@example.com", "webhook_url": hook.url,
            }))  # fmt: skip
            owner = person(env, "boss@example.com", "owner", workspace="noticed")

            def batch(n: int, env: Env = env, key: str = key) -> dict[str, Any]:
                answer = env.client.post(
                    "/v1/batch", json={"batch": [item] * n}, headers={"X-Write-Key": key}
                )
                return dict(answer.json())

            batch(7)
            wait_for(lambda: len(mailbox.messages) + len(hook.received), 0)
            batch(1)  # 8 of 10: the 80% notice, by both ways
            wait_for(lambda: len(mailbox.messages), 1)
            wait_for(lambda: len(hook.received), 1)
            mail = mailbox.messages[0]
            assert mail.rcpt_tos == ["boss@example.com"]  # no address set: the owners
            assert mail.mail_from == "roost@example.com"
            text = mail.content.decode()
            assert "has used 80% of its event budget" in text and "8 events in" in text
            assert {k: hook.received[0].json[k] for k in ("threshold", "used", "budget")} == {
                "threshold": 80, "used": 8, "budget": 10,
            }  # fmt: skip
            batch(1)
            wait_for(lambda: len(mailbox.messages), 1)  # 9: nothing new
            crossing = batch(5)  # stored up to the budget, the rest refused
            assert (crossing["accepted"], crossing["rejected"]) == (1, 4)
            assert {e["code"] for e in crossing["errors"]} == {"tier_limit"}
            wait_for(lambda: len(mailbox.messages), 2)
            wait_for(lambda: len(hook.received), 2)
            assert hook.received[1].json["threshold"] == 100
            page = owner.get("/p/noticed-site/settings").text
            month = datetime.now(UTC).strftime("%Y-%m")
            for threshold in (80, 100):
                assert f'data-notice="{month}-{threshold}"' in page
            assert "sent to boss@example.com" in page
        for env in open_env(settings):  # a restart crosses nothing again: no second notice
            _, key = env.runtime.metadata.create_key("noticed-site", "write")
            refused = env.client.post("/v1/track", json=item, headers={"X-Write-Key": key})
            assert refused.status_code == 429
            wait_for(lambda: len(mailbox.messages) + len(hook.received), 4)
    finally:
        smtp.stop()
        hook.stop()


def test_notice_settings_are_checked(tmp_path: Path) -> None:
    for raw, field in (
        ({"smtp_port": "99999"}, "smtp_port"),
        ({"smtp_tls": "maybe"}, "smtp_tls"),
        ({"webhook_url": "ftp://x"}, "webhook_url"),
        ({"smtp_host": "mail.example.com"}, "mail_from"),
        ({"mail_to": "nobody"}, "mail_to"),
        ({"colour": "red"}, "colour"),
    ):
        with pytest.raises(BadRequest) as caught:
            checked(raw)
        assert caught.value.field == field
