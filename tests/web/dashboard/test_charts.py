"""The charts' arithmetic: axis tops, empty buckets filled, points placed, bars and marks."""

from __future__ import annotations

import re
from datetime import date

import pytest

from roost.web.dashboard import charts


@pytest.mark.parametrize(
    "value, top", [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (12, 20), (1999, 2000), (2001, 5000)]
)
def test_axis_top_is_the_next_1_2_or_5(value: float, top: float) -> None:
    assert charts.nice_ceiling(value) == top


def test_empty_days_are_filled_with_zeros() -> None:
    results = [
        {"dimensions": ["2024-02-28"], "metrics": [3]},
        {"dimensions": ["2024-03-01"], "metrics": [5]},
    ]
    points = charts.filled(results, date(2024, 2, 27), date(2024, 3, 1), "day")
    assert points == [("2024-02-27", [0.0]), ("2024-02-28", [3.0]), ("2024-02-29", [0.0]),
                      ("2024-03-01", [5.0])]  # fmt: skip


def test_hours_and_months_are_labelled_as_the_stats_api_labels_them() -> None:
    hours = charts.buckets(date(2024, 1, 1), date(2024, 1, 1), "hour")
    assert (
        len(hours) == 24
        and hours[0] == "2024-01-01T00:00:00"
        and hours[-1] == "2024-01-01T23:00:00"
    )
    assert charts.buckets(date(2023, 11, 5), date(2024, 2, 1), "month") == [
        "2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]  # fmt: skip


def test_all_time_takes_its_ends_from_the_data() -> None:
    results = [
        {"dimensions": ["2024-03-01"], "metrics": [1]},
        {"dimensions": ["2024-01-01"], "metrics": [2]},
    ]
    assert [p[0] for p in charts.filled(results, None, None, "month")] == [
        "2024-01-01", "2024-02-01", "2024-03-01"]  # fmt: skip


def test_points_are_placed_on_the_axis() -> None:
    svg = str(charts.timeseries([("2024-01-01", [0.0]), ("2024-01-02", [10.0])], ["events"], "day"))
    assert 'data-points="2"' in svg and 'data-max="10"' in svg
    line = re.search(r'<polyline class="line series0" points="([^"]+)"', svg)
    assert line
    (x0, y0), (x1, y1) = (tuple(map(float, p.split(","))) for p in line.group(1).split())
    assert (
        y0 == charts.HEIGHT - charts.BOTTOM and y1 == charts.TOP
    )  # 0 at the bottom, 10 at the top
    assert x0 == charts.LEFT and x1 == charts.WIDTH - charts.RIGHT


def test_links_carry_the_value_url_encoded() -> None:
    html = str(charts.bars([["R&D #1", 2]], "Top", "events", "/p/x/events?event="))
    assert 'href="/p/x/events?event=R%26D%20%231">R&amp;D #1</a>' in html


def test_labels_are_escaped() -> None:
    html = str(charts.bars([["<script>", 3], ["b", 1]], "Top", "events"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    widths = re.findall(r"width:([\d.]+)%", html)
    assert widths == ["100.0", "33.3"]


@pytest.mark.parametrize("used, state", [(50, "ok"), (80, "warn"), (99, "warn"), (100, "over")])
def test_budget_meter_states(used: int, state: str) -> None:
    assert f'class="meter {state}"' in str(charts.meter(used, 100))


def test_the_retention_period_under_way_is_marked_as_not_over() -> None:
    cohorts = [{"cohort": "2024-04-01", "people": 10, "retained": [10, 4, 2],
                "percent": [100.0, 40.0, 20.0]}]  # fmt: skip
    # weeks from Monday 1 April: the third (15–21 April) holds the 17th
    html = str(charts.retention(cohorts, 4, "week", today=date(2024, 4, 17)))
    cells = re.findall(r"<td( class=\"partial\")?[^>]*>([0-9.]+)%</td>", html)
    assert cells == [("", "100.0"), ("", "40.0"), (' class="partial"', "20.0")]
    assert 'class="partial"' not in str(
        charts.retention(cohorts, 4, "week", today=date(2024, 5, 1))
    )
    assert 'class="future"' in html  # the fourth week: not yet
