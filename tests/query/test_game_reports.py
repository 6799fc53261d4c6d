"""The game reports (sessions, errors by signature, runs, resource flows) against
hand-computed answers on two players' sessions sent through the game dialect."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import Env

S1, S2 = "6f1c2d3e-0000-4000-8000-000000000001", "6f1c2d3e-0000-4000-8000-000000000002"
A, B = "a" * 32, "b" * 32


def game(
    player: str, session: str, build: str, at: str, kind: str, name: str, **extra: Any
) -> dict[str, Any]:
    return {"build_version": build, "session_id": session, "player_hash": player,
            "ts": f"2024-04-01T{at}:00Z", "type": kind, "name": name, **extra}  # fmt: skip


EVENTS = [
    game(A, S1, "1.0", "10:00", "session", "Session:Start"),
    game(A, S1, "1.0", "10:01", "progression", "Start:Run", dim01="forest"),
    game(A, S1, "1.0", "10:02", "resource", "Source:Gold", value=100),
    game(A, S1, "1.0", "10:03", "resource", "Sink:Gold", value=30),
    game(A, S1, "1.0", "10:05", "progression", "Complete:Run", dim01="forest"),
    game(A, S1, "1.0", "10:06", "error", "NullReference", data={"signature": "sig-1"}),
    game(A, S1, "1.0", "10:10", "session", "Session:End"),
    game(B, S2, "1.1", "11:00", "session", "Session:Start"),
    game(B, S2, "1.1", "11:01", "progression", "Start:Run", dim01="cave"),
    game(B, S2, "1.1", "11:02", "progression", "Fail:Run", dim01="cave"),
    game(B, S2, "1.1", "11:03", "error", "NullReference", data={"signature": "sig-1"}),
    game(B, S2, "1.1", "11:04", "error", "Timeout", data={"signature": "sig-2"}),
    game(B, S2, "1.1", "11:05", "resource", "Source:Gems", value=5),
    game(B, S2, "1.1", "11:06", "resource", "Sink:Gold", value=0),  # not positive: no flow
]
DAY = ["2024-04-01", "2024-04-01"]


@pytest.fixture
def played(env: Env) -> Env:
    response = env.client.post(
        "/api/v1/events", json={"events": EVENTS},
        headers={"Authorization": f"Bearer {env.write_key}"},
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    return env


def report(env: Env, kind: str, **body: Any) -> list[dict[str, Any]]:
    body.setdefault("date_range", DAY)
    response = env.client.post(
        f"/api/v1/reports/{kind}", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_sessions_from_start_to_end_or_last_event(played: Env) -> None:
    # S1: 10:00 to Session:End at 10:10 (600 s); S2 never ended: to its last event (360 s).
    [total] = report(played, "sessions")
    assert (total["sessions"], total["ended"], total["avg_duration"], total["avg_events"]) == (
        2, 1, 480.0, 7.0,
    )  # fmt: skip
    by_build = report(played, "sessions", by=["build"])
    assert [(s["by"], s["sessions"], s["avg_duration"]) for s in by_build] == [
        (["1.0"], 1, 600.0),
        (["1.1"], 1, 360.0),
    ]
    by_hour = report(played, "sessions", by=["time:hour"], timezone="Europe/Berlin")
    assert [(s["by"], s["sessions"]) for s in by_hour] == [
        (["2024-04-01T12:00:00"], 1),  # Berlin is UTC+2 in April
        (["2024-04-01T13:00:00"], 1),
    ]


def test_a_web_session_without_a_build_is_no_game_session(played: Env) -> None:
    response = played.client.post(
        "/v1/track",
        json={"userId": "web", "event": "Clicked", "timestamp": "2024-04-01T12:00:00Z",
              "context": {"sessionId": "web-session-1"}},
        headers={"X-Write-Key": played.write_key},
    )  # fmt: skip
    assert response.status_code == 200
    [total] = report(played, "sessions")
    assert total["sessions"] == 2


def test_errors_grouped_by_signature(played: Env) -> None:
    errors = report(played, "errors")
    assert [
        (e["signature"], e["name"], e["occurrences"], e["players"], e["builds"]) for e in errors
    ] == [("sig-1", "NullReference", 2, 2, ["1.0", "1.1"]), ("sig-2", "Timeout", 1, 1, ["1.1"])]
    assert errors[0]["first_seen"].startswith("2024-04-01T10:06")
    assert errors[0]["last_seen"].startswith("2024-04-01T11:03")


def test_runs_start_complete_fail(played: Env) -> None:
    [run] = report(played, "runs")
    assert (run["subject"], run["starts"], run["completes"], run["fails"], run["players"]) == (
        "Run", 2, 1, 1, 2,
    )  # fmt: skip
    assert (run["completion_rate"], run["fail_rate"]) == (50.0, 50.0)
    by_level = report(played, "runs", by=["dim1"])
    assert [(r["by"], r["starts"], r["completes"], r["fails"]) for r in by_level] == [
        (["cave"], 1, 0, 1),
        (["forest"], 1, 1, 0),
    ]


def test_resource_flows_per_currency(played: Env) -> None:
    flows = report(played, "resources")
    assert [(f["subject"], f["sources"], f["sinks"], f["net"], f["players"]) for f in flows] == [
        ("Gems", 5.0, 0.0, 5.0, 1),
        ("Gold", 100.0, 30.0, 70.0, 1),
    ]


def test_filters_apply_to_reports(played: Env) -> None:
    only_b = report(played, "errors", filters=[["is", "build", ["1.0"]]])
    assert [(e["signature"], e["occurrences"]) for e in only_b] == [("sig-1", 1)]


@pytest.mark.parametrize(
    "kind, body, field",
    [
        ("errors", {"by": ["planet"]}, "by[0]"),
        ("runs", {"by": ["time:day"]}, "by[0]"),  # time grouping is for sessions
        ("sessions", {"limit": 0}, "limit"),
        ("resources", {"date_range": "soon"}, "date_range"),
        ("resources", {"colour": "red"}, "colour"),
    ],
)
def test_a_bad_report_is_refused_naming_its_field(
    env: Env, kind: str, body: dict[str, Any], field: str
) -> None:
    response = env.client.post(
        f"/api/v1/reports/{kind}", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_players_and_the_new_ones(played: Env) -> None:
    """A played on 1 April only; B on 31 March too (so not new on 1 April); C on 2 April."""
    c = "c" * 32
    earlier = {
        **game(B, S2, "1.0", "23:00", "session", "Session:Start"),
        "ts": "2024-03-31T23:00:00Z",
    }
    later = {**game(c, S1.replace("1", "3"), "1.1", "09:00", "session", "Session:Start"),
             "ts": "2024-04-02T09:00:00Z"}  # fmt: skip
    response = played.client.post(
        "/api/v1/events", json={"events": [earlier, later]},
        headers={"Authorization": f"Bearer {played.write_key}"},
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    week = ["2024-03-31", "2024-04-02"]
    by_day = report(played, "players", by=["time:day"], date_range=week)
    assert [(r["by"][0], r["players"], r["new_players"]) for r in by_day] == [
        ("2024-03-31", 1, 1), ("2024-04-01", 2, 1), ("2024-04-02", 1, 1)
    ]  # fmt: skip
    (day,) = report(played, "players")  # 1 April alone: B was first seen the day before
    assert (day["players"], day["new_players"]) == (2, 1)
    by_build = report(played, "players", by=["build"], date_range=week)
    assert [(r["by"][0], r["players"]) for r in by_build] == [("1.0", 2), ("1.1", 2)]


def test_players_by_day_beside_the_players_of_their_30_days(played: Env) -> None:
    """DAU / MAU: each day's players beside those of the 30 days ending that day. D played
    on 3 March (29 days before 1 April: in its 30 days, not 2 April's), E on 2 March (only
    in 31 March's), B on 31 March, A and B on 1 April, C on 2 April."""
    d, e, c = "d" * 32, "e" * 32, "c" * 32

    def at(player: str, ts: str) -> dict[str, Any]:
        return {**game(player, S1, "1.0", "00:00", "session", "Session:Start"), "ts": ts}

    more = [at(d, "2024-03-03T12:00:00Z"), at(e, "2024-03-02T23:59:00Z"),
            at(B, "2024-03-31T23:00:00Z"), at(c, "2024-04-02T09:00:00Z")]  # fmt: skip
    response = played.client.post(
        "/api/v1/events", json={"events": more},
        headers={"Authorization": f"Bearer {played.write_key}"},
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    by_day = report(played, "players", by=["time:day"], date_range=["2024-03-31", "2024-04-02"])
    assert [(r["by"][0], r["players"], r["monthly_players"], r["stickiness"]) for r in by_day] == [
        ("2024-03-31", 1, 3, 33.33), ("2024-04-01", 2, 3, 66.67), ("2024-04-02", 1, 3, 33.33)
    ]  # fmt: skip
    # in Los Angeles E's event is on 2 March still, D's on 3 March, C's on 2 April
    la = report(played, "players", by=["time:day"], date_range=["2024-04-01", "2024-04-01"],
                timezone="America/Los_Angeles")  # fmt: skip
    # 1 April there: A and B (10:00, 11:00 UTC); its 30 days from 3 March: D, B, A
    assert [(r["by"][0], r["players"], r["monthly_players"]) for r in la] == [("2024-04-01", 2, 3)]
    (whole,) = report(played, "players")  # by no time: no monthly figure
    assert "monthly_players" not in whole


def test_monthly_players_over_random_play_equal_a_count_written_here(env: Env) -> None:
    """30 players each playing on random days of March–May (gaps of 29, 30 and 31 days
    among them): each day of April and May, the players of its 30 days as counted here."""
    rng = random.Random(7)
    first = date(2024, 3, 1)
    played: dict[str, set[date]] = {}
    events = []
    for n in range(30):
        player = f"{n:032x}"
        days = {first + timedelta(days=rng.randrange(92)) for _ in range(rng.randrange(1, 5))}
        if n < 3:  # two days exactly 29, 30 or 31 days apart
            days = {date(2024, 4, 1), date(2024, 4, 1) + timedelta(days=29 + n)}
        played[player] = days
        for k, day in enumerate(sorted(days)):
            events.append({"build_version": "1.0", "session_id": f"6f1c2d3e-0000-4000-8000-{n:06x}{k:06x}",
                           "player_hash": player, "ts": f"{day}T12:00:00Z", "type": "session",
                           "name": "Session:Start"})  # fmt: skip
    response = env.client.post("/api/v1/events", json={"events": events},
                               headers={"Authorization": f"Bearer {env.write_key}"})  # fmt: skip
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    found = report(env, "players", by=["time:day"], date_range=["2024-04-01", "2024-05-31"])
    expected = []
    for offset in range(61):
        day = date(2024, 4, 1) + timedelta(days=offset)
        monthly = sum(1 for days in played.values()
                      if any(day - timedelta(days=29) <= d <= day for d in days))  # fmt: skip
        daily = sum(1 for days in played.values() if day in days)
        if monthly:
            expected.append((day.isoformat(), daily, monthly))
    assert [(r["by"][0], r["players"], r["monthly_players"]) for r in found] == expected


def test_a_run_is_a_dimension_and_a_filter(played: Env) -> None:
    response = played.client.post(
        "/api/v1/query",
        json={"metrics": ["events", "users"], "dimensions": ["run"], "date_range": DAY,
              "filters": [["is", "type", ["track"]]]},
        headers={"Authorization": f"Bearer {played.read_key}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    rows = [(r["dimensions"][0], *r["metrics"]) for r in response.json()["results"]]
    assert rows == [(None, 10, 2), ("Run", 4, 2)]  # A's start and complete, B's start and fail
    (run,) = report(played, "runs", filters=[["is", "run", ["Run"]], ["is", "build", ["1.1"]]])
    assert (run["starts"], run["fails"], run["completes"]) == (1, 1, 0)
