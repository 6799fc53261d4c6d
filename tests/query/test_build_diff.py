"""Two builds compared (`POST /api/v1/reports/builds`, query/builds.py) against SQL written
here over the stored events, and a z-test computed here with the standard library's normal
distribution (the code under test uses erfc)."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import pytest

from tests.conftest import Env

DAY = ["2024-04-01", "2024-04-01"]


def player(n: int) -> str:
    return f"{n:032x}"


def session(n: int) -> str:
    return f"6f1c2d3e-0000-4000-8000-{n:012x}"


def game(n: int, build: str, minute: int, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"build_version": build, "session_id": session(n), "player_hash": player(n),
            "ts": f"2024-04-01T10:{minute:02d}:00Z", "type": kind, "name": name,
            **extra}  # fmt: skip


def played(
    n: int, build: str, run: str, completes: bool, errors: list[str]
) -> list[dict[str, Any]]:
    events = [
        game(n, build, 0, "session", "Session:Start"),
        game(n, build, 1, "progression", f"Start:{run}"),
        game(n, build, 2, "progression", f"{'Complete' if completes else 'Fail'}:{run}"),
    ]
    events += [game(n, build, 3 + i, "error", signature) for i, signature in enumerate(errors)]
    return events


def population() -> list[dict[str, Any]]:
    """Build 1.0: forest completed by 30 of 40, cave by 10 of 20; 1.1: forest by 12 of 40
    (a regression), cave by 11 of 20 (no telling). sig-old only in 1.0, sig-new only in
    1.1, sig-both in both (5 then 20 players)."""
    events: list[dict[str, Any]] = []
    n = 0
    for build, forest_ok, cave_ok, both in (("1.0", 30, 10, 5), ("1.1", 12, 11, 20)):
        for i in range(60):
            n += 1
            run, ok = ("forest", i < forest_ok) if i < 40 else ("cave", i - 40 < cave_ok)
            errors = ["sig-both"] if i < both else []
            if i == 59:
                errors.append("sig-old" if build == "1.0" else "sig-new")
            events += played(n, build, run, ok, errors)
    return events


@pytest.fixture
def shipped(env: Env) -> Env:
    events = population()
    for i in range(0, len(events), 100):
        response = env.client.post(
            "/api/v1/events", json={"events": events[i : i + 100]},
            headers={"Authorization": f"Bearer {env.write_key}"},
        )  # fmt: skip
        assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    return env


def compare(env: Env, **body: Any) -> Any:
    body.setdefault("date_range", DAY)
    response = env.client.post(
        "/api/v1/reports/builds", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - NormalDist().cdf(abs(z)))


def test_runs_compared_with_the_sql_and_a_z_test(shipped: Env) -> None:
    rows = shipped.sql(  # SQL both engines run
        "SELECT build, event, count(*) AS n FROM events WHERE category = 'progression' "
        "GROUP BY build, event ORDER BY build, event"
    )
    counted = {(r["build"], r["event"]): int(r["n"]) for r in rows}
    want = {(run, build): (counted.get((build, f"Start:{run}"), 0),
                           counted.get((build, f"Complete:{run}"), 0))
            for run in ("forest", "cave") for build in ("1.0", "1.1")}  # fmt: skip
    found = compare(shipped, builds=["1.0", "1.1"])
    assert [r["run"] for r in found["runs"]] == ["cave", "forest"]
    for run in found["runs"]:
        (s1, c1), (s2, c2) = want[(run["run"], "1.0")], want[(run["run"], "1.1")]
        assert (run["starts"], run["completes"]) == ([s1, s2], [c1, c2])
        completion = run["completion"]
        assert completion["before"] == round(100 * c1 / s1, 2)
        assert completion["after"] == round(100 * c2 / s2, 2)
        assert completion["p_value"] == pytest.approx(z_test(c1, s1, c2, s2), abs=1e-4)
    forest, cave = found["runs"][1]["completion"], found["runs"][0]["completion"]
    assert (forest["change"], forest["significant"]) == (-45.0, True)  # 75% → 30%
    assert (cave["change"], cave["significant"]) == (5.0, False)  # 50% → 55%
    assert found["complete"] is True


def test_new_and_resolved_error_signatures(shipped: Env) -> None:
    rows = shipped.sql(  # an error without a signature is signed by its name
        "SELECT build, event, count(DISTINCT anonymous_id) AS who FROM events "
        "WHERE category = 'error' GROUP BY build, event ORDER BY build, event"
    )
    signatures = {b: {r["event"]: int(r["who"]) for r in rows if r["build"] == b}
                  for b in ("1.0", "1.1")}  # fmt: skip
    found = compare(shipped, builds=["1.0", "1.1"])
    errors = found["errors"]
    assert [e["signature"] for e in errors["new"]] == sorted(
        signatures["1.1"].keys() - signatures["1.0"].keys()
    ) == ["sig-new"]  # fmt: skip
    assert [e["signature"] for e in errors["resolved"]] == ["sig-old"]
    [both] = errors["changed"]
    assert both["players"] == [signatures["1.0"]["sig-both"], signatures["1.1"]["sig-both"]]
    share = both["share_of_players"]
    assert (share["before"], share["after"], share["significant"]) == (8.33, 33.33, True)
    assert share["p_value"] == pytest.approx(z_test(5, 60, 20, 60), abs=1e-4)
    assert [(b["build"], b["players"], b["sessions"], b["error_signatures"])
            for b in found["builds"]] == [("1.0", 60, 60, 2), ("1.1", 60, 60, 2)]  # fmt: skip
    # the other way round, new and resolved swap
    back = compare(shipped, builds=["1.1", "1.0"])["errors"]
    assert [e["signature"] for e in back["new"]] == ["sig-old"]
    assert [e["signature"] for e in back["resolved"]] == ["sig-new"]


def test_a_funnel_per_app_version(env: Env) -> None:
    """Segment events carry their app's version as the build: a signup funnel of 30 people on
    2.0 (24 finish) and 30 on 2.1 (12 finish)."""
    batch = []
    for n in range(60):
        version = "2.0" if n < 30 else "2.1"
        finishes = n < 24 if n < 30 else n < 42
        steps = ["Signup Started", *(["Signup Finished"] if finishes else [])]
        for i, name in enumerate(steps):
            batch.append({"type": "track", "userId": f"u{n}", "event": name,
                          "timestamp": f"2024-04-01T09:0{i}:00Z",
                          "context": {"app": {"version": version}}})  # fmt: skip
    response = env.client.post("/v1/batch", json={"batch": batch, "writeKey": env.write_key})
    assert response.status_code == 200, response.text
    found = compare(env, builds=["2.0", "2.1"],
                    funnel={"steps": ["Signup Started", "Signup Finished"], "window": "1h"})  # fmt: skip
    first, second = found["funnel"]
    assert (first["people"], second["people"]) == ([30, 30], [24, 12])
    assert "from_previous" not in first
    step = second["from_previous"]
    assert (step["before"], step["after"], step["change"], step["significant"]) == (
        80.0, 40.0, -40.0, True)  # fmt: skip
    assert step["p_value"] == pytest.approx(z_test(24, 30, 12, 30), abs=1e-4)
    assert found["runs"] == [] and found["errors"]["new"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"builds": ["1.0"]}, "builds"),
        ({"builds": ["1.0", "1.0"]}, "builds"),
        ({"builds": ["1.0", 2]}, "builds"),
        ({"builds": ["1.0", "1.1"], "date_range": "fortnight"}, "date_range"),
        ({"builds": ["1.0", "1.1"], "funnel": {"steps": ["one"]}}, "funnel.steps"),
        ({"builds": ["1.0", "1.1"], "funnel": {"steps": ["a", "b"], "date_range": "7d"}},
         "funnel.date_range"),
        ({"builds": ["1.0", "1.1"], "runs": True}, "runs"),
    ],
)  # fmt: skip
def test_a_bad_comparison_names_its_field(env: Env, body: dict[str, Any], field: str) -> None:
    response = env.client.post(
        "/api/v1/reports/builds", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_the_z_test_edges() -> None:
    from roost.query.builds import compared, p_value

    assert p_value(0, 0, 1, 2) is None  # nothing on one side
    assert p_value(3, 2, 1, 2) is None  # more successes than tries: not a proportion
    assert p_value(5, 5, 7, 7) == 1.0  # all on both sides
    few = compared(1, 4, 4, 4)  # 25% → 100%, but too few to tell
    assert few["p_value"] is not None and few["p_value"] < 0.05 and few["significant"] is False
