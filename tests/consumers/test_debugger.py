"""The live debugger: an SSE stream of a project's events and outcomes, and `roost tail`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import Server, create_key, roost

pytestmark = pytest.mark.slow


def listen(
    url: str, key: str, want: int, into: list[dict[str, Any]], ready: threading.Event
) -> None:
    with httpx.stream(
        "GET",
        f"{url}/api/v1/debugger/stream",
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(10, read=20),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(": roost debugger"):
                ready.set()
            if line.startswith("data: "):
                into.append(json.loads(line.removeprefix("data: ")))
                if len(into) >= want:
                    return


def test_stream_shows_each_event_with_its_outcome(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        write, read = create_key(data, "write"), create_key(data, "read")
        entries: list[dict[str, Any]] = []
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(server.url, read, 4, entries, ready))
        listener.start()
        assert ready.wait(10)
        auth = {"Authorization": f"Bearer {write}"}
        httpx.post(
            f"{server.url}/v1/track",
            json={"userId": "u", "event": "Seen", "messageId": "m1"},
            headers=auth,
        )
        batch = {
            "batch": [
                {"type": "track", "userId": "u", "event": "Again", "messageId": "m1"},
                {"type": "track", "event": "No Id"},
                {"type": "page", "anonymousId": "a", "name": "Home"},
            ]
        }
        httpx.post(f"{server.url}/v1/batch", json=batch, headers=auth)
        listener.join(20)
        assert not listener.is_alive()
        assert [(e["outcome"], e["index"]) for e in entries] == [
            ("accepted", 0),  # the single track
            ("deduplicated", 0),  # the batch, in its own order
            ("rejected", 1),
            ("accepted", 2),
        ]
        assert entries[0]["event"]["event"] == "Seen" and entries[0]["dialect"] == "segment"
        assert entries[1]["reason"] == "duplicate"
        assert entries[2]["field"] == "batch[1].userId"
        assert entries[3]["event"]["type"] == "page"
        assert "ip" not in entries[0]["event"]["context"] and entries[0]["event"]["ip"] is None
        refused = httpx.get(
            f"{server.url}/api/v1/debugger/stream", headers={"Authorization": f"Bearer {write}"}
        )
        assert refused.status_code == 403

        # roost tail prints the same stream for people
        env = {"ROOST_DATA": str(data), "PATH": "/usr/bin:/bin"}
        tail = subprocess.Popen(
            [sys.executable, "-m", "roost", "tail", "--count", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 20
        while tail.poll() is None and time.monotonic() < deadline:
            httpx.post(
                f"{server.url}/v1/track", json={"userId": "tailer", "event": "Tailed"}, headers=auth
            )
            time.sleep(0.3)
        out, err = tail.communicate(timeout=10)
        assert tail.returncode == 0, err
        assert "accepted" in out and "Tailed" in out and "(tailer)" in out
    finally:
        server.stop()


def test_stream_shows_violations_transformations_drops_and_deliveries(tmp_path: Path) -> None:
    from tests.integration.receiver import Receiver

    receiver = Receiver().start()
    data = tmp_path / "data"
    data.mkdir()
    (data / "roost.toml").write_text(
        f"""
[projects.default]
[[projects.default.contracts]]
target = "Order Completed"
action = "allow"
schema = {{ type = "object", required = ["revenue"] }}

[[projects.default.transformations]]
step = "rename_event"
from = "buy"
to = "Order Completed"

[[projects.default.transformations]]
step = "filter"
when = {{ field = "properties.test", equals = true }}

[[projects.default.destinations]]
name = "hook"
kind = "webhook"
url = "{receiver.url}"
batch_seconds = 0.05
"""
    )
    server = Server(data).start()
    try:
        write, read = create_key(data, "write"), create_key(data, "read")
        entries: list[dict[str, Any]] = []
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(server.url, read, 3, entries, ready))
        listener.start()
        assert ready.wait(10)
        batch = {
            "batch": [
                {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "a"},
                {"type": "track", "userId": "u", "event": "buy", "properties": {"test": True}},
            ]
        }
        httpx.post(f"{server.url}/v1/batch", json=batch, auth=(write, ""))
        listener.join(20)
        assert not listener.is_alive()
        accepted, dropped, delivery = entries
        assert accepted["outcome"] == "accepted"
        assert accepted["violations"][0]["rule"] == "required"
        assert accepted["transformations"] == ["rename_event", "filter"]
        assert dropped["outcome"] == "dropped" and dropped["reason"] == "filtered"
        assert "transformations[1] (filter)" in dropped["message"]
        assert delivery["outcome"] == "delivery" and delivery["destination"] == "hook"
        assert delivery["status"] == "delivered" and delivery["message_ids"] == ["a"]
    finally:
        server.stop()
        receiver.stop()


def test_stream_shows_a_whole_request_refused_once_its_key_is_known(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        read = create_key(data, "read")
        made = roost(
            "keys", "create", "--project", "default", "--kind", "write", "--rate", "0.01",
            "--burst", "1", "--json", data=data,
        )  # fmt: skip
        slow = json.loads(made.stdout)["key"]
        entries: list[dict[str, Any]] = []
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(server.url, read, 2, entries, ready))
        listener.start()
        assert ready.wait(10)
        for _ in range(2):
            httpx.post(
                f"{server.url}/v1/track", json={"userId": "u", "event": "E"}, auth=(slow, "")
            )
        listener.join(20)
        assert [e["outcome"] for e in entries] == ["accepted", "refused"]
        assert entries[1]["reason"] == "rate_limit_exceeded" and entries[1]["status"] == 429
    finally:
        server.stop()
