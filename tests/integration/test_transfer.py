"""`roost import` and `roost export` against a real `roost serve`: every dialect, historical
times kept, messageIds deduplicated on a second import, bad lines named by number."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.integration.server import Server, create_key, roost

LINES = [
    # Segment, as its own export writes them (receivedAt and all)
    {"type": "track", "userId": "u1", "event": "Buy", "messageId": "s1",
     "timestamp": "2023-05-01T10:00:00Z", "receivedAt": "2023-05-01T10:00:01Z",
     "properties": {"price": 5}},
    {"type": "identify", "userId": "u1", "messageId": "s2", "timestamp": "2023-05-01T10:01:00Z",
     "traits": {"plan": "pro"}},
    # game
    {"build_version": "1.0", "session_id": "6f1c2d3e-0000-4000-8000-000000000001",
     "player_hash": "p" * 32, "ts": "2023-05-02T09:00:00Z", "type": "progression",
     "name": "Start:Run", "event_id": "g1"},
    # web
    {"site_id": "default", "url": "https://shop.example/pricing"},
    # free-form
    {"event_name": "Deployed", "timestamp": "2023-05-03T12:00:00Z", "service": "api"},
    "not an object",
    {"type": "track", "event": "No Id"},  # Segment needs a userId or anonymousId
]  # fmt: skip


def test_import_every_dialect_then_export(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        source = tmp_path / "events.ndjson"
        source.write_text("\n".join(json.dumps(line) for line in LINES) + "\n\n{broken\n")
        first = roost("import", str(source), "--url", server.url, data=data, check=False)
        assert first.returncode == 1, first.stderr
        assert "Imported 5 events; 3 refused." in first.stdout
        assert "line 6: not an event of any dialect" in first.stderr
        assert "line 7:" in first.stderr and "line 9: not JSON" in first.stderr

        read = create_key(data, "read")

        def sql(query: str) -> list[list[object]]:
            response = httpx.post(
                f"{server.url}/api/v1/sql", json={"sql": query},
                headers={"Authorization": f"Bearer {read}"}, timeout=30,
            )  # fmt: skip
            assert response.status_code == 200, response.text
            return list(response.json()["rows"])

        assert sql("select dialect, count(*) from events group by 1 order by 1") == [
            ["freeform", 1], ["game", 1], ["segment", 2], ["web", 1],
        ]  # fmt: skip
        assert sql(
            "select strftime(timestamp, '%Y-%m-%d') from events where message_id = 's1'"
        ) == [["2023-05-01"]]
        assert sql("select strftime(timestamp, '%Y-%m-%d') from events where dialect = 'game'") == [
            ["2023-05-02"]
        ]

        again = roost("import", str(source), "--url", server.url, data=data, check=False)
        assert "3 refused" in again.stdout
        # Segment and game lines carry ids: deduplicated. Web and free-form lines do not.
        assert sql("select count(*) from events") == [[7]]

        out = tmp_path / "out.ndjson"
        done = roost("export", "--url", server.url, "-o", str(out), data=data)
        assert "Wrote" in done.stdout
        exported = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(exported) == 7 and "s1" in {e["message_id"] for e in exported}
        parquet = tmp_path / "out.parquet"
        roost("export", "--url", server.url, "--format", "parquet", "-o", str(parquet), data=data)
        assert parquet.read_bytes()[:4] == b"PAR1"
    finally:
        server.stop()


ROUND_TRIP = [
    {"type": "track", "userId": "u1", "event": "Buy", "messageId": "t1",
     "timestamp": "2025-03-15T14:30:00.123+05:00", "originalTimestamp": "2025-03-15T14:29:59+05:00",
     "sentAt": "2025-03-15T14:30:01+05:00", "properties": {"price": 5.5, "tags": ["a", "b"]},
     "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
                 "page": {"url": "https://shop.example/p?utm_source=news"}, "ip": "198.51.100.7"},
     "integrations": {"All": False, "hook": True}},
    {"type": "identify", "userId": "u1", "messageId": "t2", "timestamp": "2025-03-15T10:00:00Z",
     "traits": {"plan": "pro", "nested": {"x": 1}}, "context": {"traits": {"email": "a@b.c"}}},
    {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "t3",
     "timestamp": "2025-03-16T00:00:00Z", "context": {"page": {"url": "https://shop.example/"}}},
]  # fmt: skip


def test_export_then_import_into_an_empty_project_gives_back_every_event(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        write = create_key(data, "write")
        response = httpx.post(
            f"{server.url}/v1/batch", json={"batch": ROUND_TRIP},
            headers={"X-Write-Key": write}, timeout=30,
        )  # fmt: skip
        assert response.json()["accepted"] == 3, response.text
        game = {"build_version": "1.0", "session_id": "6f1c2d3e-0000-4000-8000-000000000001",
                "player_hash": "p" * 32, "ts": "2025-03-15T08:00:00-03:00", "type": "resource",
                "name": "Source:Gold", "value": 25, "dim01": "shop", "data": {"k": True},
                "event_id": "t4"}  # fmt: skip
        httpx.post(f"{server.url}/api/v1/events", json={"events": [game]},
                   headers={"X-Write-Key": write}, timeout=30)  # fmt: skip
        httpx.post(f"{server.url}/post", json={"event_name": "Deployed", "svc": "api"},
                   headers={"X-Write-Key": write}, timeout=30)  # fmt: skip
        original = tmp_path / "original.ndjson"
        roost("export", "--url", server.url, "-o", str(original), data=data)
        roost("projects", "create", "copy", data=data)
        done = roost("import", str(original), "--url", server.url, "--project", "copy", data=data)
        assert "Imported 5 events; 0 refused." in done.stdout, done.stdout + done.stderr
        copied = tmp_path / "copy.ndjson"
        roost("export", "--url", server.url, "--project", "copy", "-o", str(copied), data=data)
        before = [json.loads(line) for line in original.read_text().splitlines()]
        after = [json.loads(line) for line in copied.read_text().splitlines()]
        assert len(before) == 5 and after == before
        again = roost("import", str(original), "--url", server.url, "--project", "copy", data=data)
        assert "0 refused" in again.stdout
        roost("export", "--url", server.url, "--project", "copy", "-o", str(copied), data=data)
        assert len(copied.read_text().splitlines()) == 5  # stored once
    finally:
        server.stop()
