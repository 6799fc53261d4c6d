"""`roost demo`: the same options give the same events; sent to a real server they fill
every report; sent twice they are stored once."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from roost.devtools.demo import generate
from tests.integration.server import Server, create_key, roost

WEEK = ["2024-06-24", "2024-06-30"]


def test_the_same_seed_gives_the_same_events() -> None:
    def run(seed: int) -> str:
        return json.dumps(
            list(generate(seed, days=3, scale=0.2, until=date(2024, 6, 30))), default=str
        )

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_the_demo_writes_nothing_later_than_now() -> None:
    now = datetime.now(UTC)
    times = [
        datetime.fromisoformat(str(event.get("timestamp") or event.get("ts")))
        for _, events in generate(3, days=2, scale=0.2)
        for _, event in events
    ]
    assert times and max(times) <= now
    assert max(times).date() == now.date() or now.hour < 7  # today's events up to now


def test_demo_fills_every_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        args = [
            "demo",
            "--url",
            server.url,
            "--days",
            "7",
            "--scale",
            "0.3",
            "--until",
            "2024-06-30",
        ]
        sent = roost(*args, data=data)
        match = re.search(r"Sent (\d+) demo events to project 'default'; 0 refused", sent.stdout)
        assert match, sent.stdout + sent.stderr
        read = {"Authorization": f"Bearer {create_key(data, 'read')}"}

        def post(path: str, **body: Any) -> Any:
            body.setdefault("date_range", WEEK)
            response = httpx.post(f"{server.url}{path}", json=body, headers=read, timeout=60)
            assert response.status_code == 200, response.text
            return response.json()

        [totals] = post("/api/v1/query", metrics=["events", "visitors", "pageviews", "users"])[
            "results"
        ]
        events, visitors, pageviews, users = totals["metrics"]
        assert (
            events == int(match.group(1)) and visitors > 50 and pageviews > visitors and users > 50
        )
        funnel = post(
            "/api/v1/reports/funnel",
            steps=[["is", "page", ["/pricing"]], ["is", "page", ["/signup"]], "Signed Up"],
        )
        people = [s["people"] for s in funnel["steps"]]
        assert people[0] > people[1] > people[2] > 0
        errors = post("/api/v1/reports/errors")["results"]
        assert {"sig-inventory-null", "sig-save-timeout"} <= {e["signature"] for e in errors}
        [sessions] = post("/api/v1/reports/sessions")["results"]
        assert sessions["sessions"] > 10 and sessions["avg_duration"] > 60
        runs = post("/api/v1/reports/runs")["results"]
        assert runs[0]["subject"] == "Run" and 0 < runs[0]["completion_rate"] < 100
        gold = [r for r in post("/api/v1/reports/resources")["results"] if r["subject"] == "Gold"]
        assert gold and gold[0]["sources"] > gold[0]["sinks"] > 0
        cohorts = post("/api/v1/reports/retention", period="day", periods=3)["cohorts"]
        assert cohorts and cohorts[0]["people"] > 0

        roost(*args, data=data)  # the same messageIds: deduplicated
        [again] = post("/api/v1/query", metrics=["events"])["results"]
        assert again["metrics"] == [events]
    finally:
        server.stop()
