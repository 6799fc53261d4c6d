"""Funnels and retention cohorts against hand-computed answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from roost.query import funnels
from tests.conftest import Env

FUNNEL_EVENTS = [
    ("p1", "View", "10:00"), ("p1", "Cart", "10:05"), ("p1", "Buy", "10:10"),
    ("p2", "View", "10:00"), ("p2", "Other", "10:01"), ("p2", "Cart", "10:02"),
    ("p2", "Buy", "12:00"),
    ("p3", "Cart", "09:00"), ("p3", "View", "09:30"), ("p3", "Buy", "09:40"),
    ("p4", "View", "08:00"), ("p4", "View", "20:00"), ("p4", "Cart", "20:10"),
    ("p4", "Buy", "20:20"),
    ("p5", "Buy", "10:00"),
    ("p6", "View", "11:00"), ("p6", "Cart", "11:00"), ("p6", "Buy", "11:00"),  # ties: Log order
]  # fmt: skip


def send(env: Env, events: list[dict[str, Any]]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": events}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def report(env: Env, kind: str, **body: Any) -> Any:
    response = env.client.post(
        f"/api/v1/reports/{kind}", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def shop(env: Env) -> Env:
    send(
        env,
        [
            {"type": "track", "userId": who, "event": name, "messageId": f"f{i}",
             "timestamp": f"2024-02-01T{at}:00Z"}
            for i, (who, name, at) in enumerate(FUNNEL_EVENTS)
        ],
    )  # fmt: skip
    return env


def test_a_person_of_thousands_of_starts_is_followed_in_bounded_memory(env: Env) -> None:
    """3,000 starts and 3,000 next steps of one person (a crawler signed in, a test account):
    ClickHouse follows each person's events in arrays, and that must take memory as events,
    not as starts × events² (3,000 starts asked it for 128 GiB)."""
    start = datetime(2024, 3, 1, tzinfo=UTC)
    events = [
        {"type": "track", "userId": "busy", "event": name, "messageId": f"busy{k}-{name}",
         "timestamp": (start + timedelta(minutes=k, seconds=10 * j)).isoformat()}
        for k in range(3000) for j, name in enumerate(("View", "Cart"))
    ]  # fmt: skip
    for first in range(0, len(events), 500):
        send(env, events[first : first + 500])
    for mode in funnels.MODES:
        answer = report(env, "funnel", steps=["View", "Cart"], window="1h", mode=mode,
                        date_range=["2024-03-01", "2024-03-03"])  # fmt: skip
        assert [step["people"] for step in answer["steps"]] == [1, 1], mode
        assert answer["avg_seconds_to_convert"] == 10.0, mode


@pytest.mark.parametrize(
    "window, mode, people, seconds",
    [
        # p2's Buy is 2 h after its View; p4 starts again at 20:00. To convert: p1 600 s,
        # p4 1,200 (from its 20:00 start), p6 0 (ties)
        ("1h", "loose", [5, 4, 3], 600.0),
        ("1d", "loose", [5, 4, 4], 2250.0),  # and p2: 7,200 s; p4 still its quickest
        ("1h", "strict", [5, 3, 3], 600.0),  # p2 did Other between View and Cart
        (3600, "strict", [5, 3, 3], 600.0),
    ],
)
def test_funnel_steps_in_order_within_the_window(
    shop: Env, window: Any, mode: str, people: list[int], seconds: float
) -> None:
    answer = report(shop, "funnel", steps=["View", ["is", "event", ["Cart"]], "Buy"],
                    window=window, mode=mode, date_range=["2024-02-01", "2024-02-01"])  # fmt: skip
    assert [s["people"] for s in answer["steps"]] == people
    first = answer["steps"][0]
    assert first["label"] == "View" and first["conversion"] == 100.0
    last = answer["steps"][-1]
    assert last["conversion"] == round(100 * people[2] / people[0], 2)
    assert last["dropped"] == people[1] - people[2]
    assert answer["avg_seconds_to_convert"] == seconds


@pytest.mark.parametrize("step, dropped", [(0, ["p3"]), (1, ["p2"])])
def test_the_people_who_dropped_after_a_step(shop: Env, step: int, dropped: list[str]) -> None:
    """p3 viewed but never put in the cart after; p2 put in the cart but bought 2 h later."""
    body = {"steps": ["View", "Cart", "Buy"], "window": "1h",
            "date_range": ["2024-02-01", "2024-02-01"]}  # fmt: skip
    report(shop, "funnel", **body)  # the API waits for the events to be loaded
    parsed = funnels.parse(body, datetime.now(UTC))
    warehouse = shop.runtime.warehouse
    project = shop.runtime.metadata.project("default").id
    sql = funnels.build(parsed, project, warehouse.flavor, dropped_at=step)
    assert [r[0] for r in warehouse.report(sql, timeout=30, max_rows=100).rows] == dropped


def test_funnel_filters_and_range_apply_to_every_step(shop: Env) -> None:
    outside = report(
        shop, "funnel", steps=["View", "Cart"], date_range=["2024-02-02", "2024-02-02"]
    )
    assert [s["people"] for s in outside["steps"]] == [0, 0]
    only_p1 = report(shop, "funnel", steps=["View", "Cart", "Buy"],
                     filters=[["is", "user", ["p1"]]], date_range=["2024-02-01", "2024-02-01"])  # fmt: skip
    assert [s["people"] for s in only_p1["steps"]] == [1, 1, 1]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"steps": ["View"]}, "steps"),
        ({"steps": ["View", 3]}, "steps[1]"),
        ({"steps": ["View", ["is", "planet", ["x"]]]}, "steps[1][1]"),
        ({"steps": ["View", "Cart"], "window": "soon"}, "window"),
        ({"steps": ["View", "Cart"], "mode": "fuzzy"}, "mode"),
        ({"steps": ["View", "Cart"], "timezone": "Nowhere/City"}, "timezone"),
    ],
)
def test_a_bad_funnel_is_refused_naming_its_field(
    env: Env, body: dict[str, Any], field: str
) -> None:
    response = env.client.post(
        "/api/v1/reports/funnel", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == field


RETENTION_EVENTS = [
    ("r1", "Open", "2024-03-01"), ("r1", "Open", "2024-03-02"), ("r1", "Open", "2024-03-04"),
    ("r2", "Signed Up", "2024-03-01"), ("r2", "Open", "2024-03-03"),
    ("r3", "Open", "2024-03-02"), ("r3", "Open", "2024-03-03"),
]  # fmt: skip


@pytest.fixture
def app(env: Env) -> Env:
    send(
        env,
        [
            {"type": "track", "userId": who, "event": name, "messageId": f"r{i}",
             "timestamp": f"{day}T12:00:00Z"}
            for i, (who, name, day) in enumerate(RETENTION_EVENTS)
        ],
    )  # fmt: skip
    return env


MARCH = ["2024-03-01", "2024-03-31"]


def test_daily_cohorts(app: Env) -> None:
    answer = report(app, "retention", period="day", periods=4, date_range=MARCH)
    assert [(c["cohort"], c["people"], c["retained"]) for c in answer["cohorts"]] == [
        ("2024-03-01", 2, [2, 1, 1, 1]),  # r1 back on the 2nd and 4th, r2 on the 3rd
        ("2024-03-02", 1, [1, 1, 0, 0]),
    ]
    assert answer["cohorts"][0]["percent"] == [100.0, 50.0, 50.0, 50.0]


def test_periods_after_the_range_are_null_not_zero(app: Env) -> None:
    """A period that has not happened (here: after the range's last day) is no 0% period."""
    answer = report(app, "retention", period="day", periods=4,
                    date_range=["2024-03-01", "2024-03-03"])  # fmt: skip
    assert [(c["cohort"], c["retained"], c["percent"]) for c in answer["cohorts"]] == [
        ("2024-03-01", [2, 1, 1, None], [100.0, 50.0, 50.0, None]),
        ("2024-03-02", [1, 1, None, None], [100.0, 100.0, None, None]),
    ]


def test_periods_that_have_not_happened_yet_are_null(env: Env) -> None:
    """A range that reaches past today: tomorrow's period is null, not 0%."""
    today = datetime.now(UTC).date()
    send(env, [{"type": "track", "userId": "n1", "event": "Open", "messageId": "today",
                "timestamp": datetime.now(UTC).isoformat()}])  # fmt: skip
    answer = report(env, "retention", period="day", periods=3,
                    date_range=[today.isoformat(), (today + timedelta(days=5)).isoformat()])  # fmt: skip
    assert [(c["retained"], c["percent"]) for c in answer["cohorts"]] == [
        ([1, None, None], [100.0, None, None])
    ]


def test_events_of_no_one_make_no_person_of_a_cohort(env: Env) -> None:
    """A web analytics pageview carries a visitor but no user or anonymous id: it is no
    person's, so no cohort counts it as one."""
    today = datetime.now(UTC).date()
    send(env, [{"type": "track", "userId": "n1", "event": "Open", "messageId": "today",
                "timestamp": datetime.now(UTC).isoformat()}])  # fmt: skip
    viewed = env.client.post(
        "/api/event",
        json={"n": "pageview", "u": "https://shop.test/pricing", "d": "default"},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
    )
    assert viewed.status_code == 202, viewed.text
    answer = report(env, "retention", period="day", periods=2,
                    date_range=[today.isoformat(), (today + timedelta(days=5)).isoformat()])  # fmt: skip
    assert [(c["people"], c["retained"]) for c in answer["cohorts"]] == [(1, [1, None])]


def test_weekly_cohorts_start_on_monday(app: Env) -> None:
    answer = report(app, "retention", period="week", periods=2, date_range=MARCH)
    assert [(c["cohort"], c["people"], c["retained"]) for c in answer["cohorts"]] == [
        ("2024-02-26", 3, [3, 1]),  # 1 March 2024 is a Friday; r1 is back on Monday the 4th
    ]


def test_a_start_event_picks_the_cohort(app: Env) -> None:
    answer = report(app, "retention", period="day", periods=3, start="Signed Up",
                    date_range=MARCH)  # fmt: skip
    assert [(c["cohort"], c["people"], c["retained"]) for c in answer["cohorts"]] == [
        ("2024-03-01", 1, [1, 0, 1]),
    ]
    back = report(app, "retention", period="day", periods=3, start="Signed Up",
                  **{"return": ["is", "event", ["Nothing"]]}, date_range=MARCH)  # fmt: skip
    assert back["cohorts"][0]["retained"] == [0, 0, 0]


def test_a_bad_retention_query_is_refused(env: Env) -> None:
    response = env.client.post(
        "/api/v1/reports/retention",
        json={"period": "year"},
        headers={"Authorization": f"Bearer {env.read_key}"},
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "period"
