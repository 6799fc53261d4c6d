"""The Stats API against hand-computed answers on a small fixed data set, time zones and day
boundaries included (2024-01-01 23:30 UTC is already 2 January in Berlin)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from roost.errors import BadRequest
from roost.query import stats
from roost.storage.warehouse.flavor import DuckDBFlavor
from tests.conftest import Env

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def web(ip: str, ua: str, url: str | None = None, session: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"ip": ip, "userAgent": ua}
    if url:
        context["page"] = {"url": url}
    if session:
        context["sessionId"] = session
    return context


EVENTS: list[dict[str, Any]] = [
    {"type": "page", "anonymousId": "a1", "messageId": "e1", "timestamp": "2024-01-01T10:00:00Z",
     "context": web("198.51.100.1", CHROME, "https://shop.example/", "s1")},
    {"type": "page", "anonymousId": "a1", "messageId": "e2", "timestamp": "2024-01-01T10:05:00Z",
     "context": web("198.51.100.1", CHROME, "https://shop.example/pricing?utm_source=news", "s1")},
    {"type": "track", "userId": "u1", "event": "Signup", "messageId": "e3",
     "timestamp": "2024-01-01T10:06:00Z", "properties": {"plan": "pro", "revenue": 10},
     "context": web("198.51.100.1", CHROME)},
    {"type": "page", "anonymousId": "a2", "messageId": "e4", "timestamp": "2024-01-01T23:30:00Z",
     "context": web("198.51.100.2", FIREFOX, "https://shop.example/", "s2")},
    {"type": "track", "userId": "u2", "event": "Signup", "messageId": "e5",
     "timestamp": "2024-01-02T09:00:00Z", "properties": {"plan": "free", "revenue": 0},
     "context": web("198.51.100.2", FIREFOX)},
    {"type": "page", "anonymousId": "a3", "messageId": "e6", "timestamp": "2024-01-02T10:00:00Z",
     "context": web("198.51.100.3", BOT, "https://shop.example/")},
]  # fmt: skip
RANGE = ["2024-01-01", "2024-01-02"]


def send(env: Env, events: list[dict[str, Any]], key: str | None = None) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": events}, headers={"X-Write-Key": key or env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def query(env: Env, **body: Any) -> Any:
    body.setdefault("date_range", RANGE)
    response = env.client.post(
        "/api/v1/query", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def rows(answer: Any) -> list[tuple[Any, ...]]:
    return [(*r["dimensions"], *r["metrics"]) for r in answer["results"]]


@pytest.fixture
def shop(env: Env) -> Env:
    send(env, EVENTS)
    return env


def test_totals_of_every_metric(shop: Env) -> None:
    metrics = ["events", "users", "visitors", "pageviews", "sessions", "value_sum", "value_avg"]
    answer = query(shop, metrics=metrics)
    # users: a1, u1, a2, u2, a3; visitors: the two browsers (the bot is left out), pageviews
    # likewise; sessions s1, s2; value: revenue 10 and 0.
    assert rows(answer) == [(6, 5, 2, 3, 2, 10.0, 5.0)]
    assert answer["query"]["date_range"] == RANGE and answer["query"]["timezone"] == "UTC"


def test_visits_bounces_and_durations(shop: Env) -> None:
    metrics = ["visits", "views_per_visit", "bounce_rate", "visit_duration", "session_duration"]
    # The Chrome visitor: one visit of three events (10:00, 10:05, 10:06; 360 s). The Firefox
    # visitor: 23:30 and 09:00 the next day, more than 30 minutes apart: two one-event visits,
    # both bounces. The bot makes none. Sessions: s1 (10:00 to 10:05, 300 s) and s2 (0 s).
    assert rows(query(shop, metrics=metrics)) == [(3, 1.0, 66.67, 120.0, 150.0)]
    by_day = query(shop, metrics=["visits", "pageviews", "bounce_rate"], dimensions=["time:day"])
    assert rows(by_day) == [("2024-01-01", 2, 3, 50.0), ("2024-01-02", 1, 0, 100.0)]
    # A visit is cut by its group: the pages seen on "/" were two one-page visits.
    by_page = query(shop, metrics=["visits", "bounce_rate"], dimensions=["page"],
                    filters=[["is", "type", ["page"]]])  # fmt: skip
    assert rows(by_page) == [("/", 2, 100.0), ("/pricing", 1, 100.0)]
    late = query(shop, metrics=["visits", "visit_duration", "session_duration", "views_per_visit",
                                "bounce_rate"], date_range=["2024-01-03", "2024-01-03"])  # fmt: skip
    assert rows(late) == [(0, None, None, None, None)]  # nothing to average
    send(shop, [{"type": "page", "anonymousId": "a9", "messageId": "e9",
                 "timestamp": "2024-01-03T12:00:00Z", "context": web("198.51.100.9", BOT)}])  # fmt: skip
    again = query(shop, metrics=["views_per_visit", "bounce_rate"],
                  date_range=["2024-01-03", "2024-01-03"])  # fmt: skip
    assert rows(again) == [(None, None)]  # a bot's: 0 pageviews in 0 visits, not NaN


def test_conversion_rate_needs_a_goal_and_counts_visitors(shop: Env) -> None:
    send(shop, [{"type": "page", "anonymousId": "a4", "messageId": "e8",
                 "timestamp": "2024-01-02T12:00:00Z",
                 "context": web("198.51.100.4", CHROME, "https://shop.example/")}])  # fmt: skip
    goal = [["is", "event", ["Signup"]]]
    # Three visitors (Chrome .1, Firefox .2, Chrome .4); two of them signed up.
    assert rows(query(shop, metrics=["conversion_rate", "visitors"], filters=goal)) == [(66.67, 2)]
    by_day = query(shop, metrics=["conversion_rate"], dimensions=["time:day"], filters=goal)
    assert rows(by_day) == [("2024-01-01", 50.0), ("2024-01-02", 50.0)]
    refused = shop.client.post(
        "/api/v1/query",
        json={"metrics": ["conversion_rate"], "date_range": RANGE},
        headers={"Authorization": f"Bearer {shop.read_key}"},
    )
    assert refused.status_code == 400 and "goal" in refused.json()["error"]["message"]


def test_days_are_cut_in_the_querys_time_zone(shop: Env) -> None:
    utc = query(shop, metrics=["events"], dimensions=["time:day"])
    assert rows(utc) == [("2024-01-01", 4), ("2024-01-02", 2)]
    berlin = query(shop, metrics=["events"], dimensions=["time"], interval="day",
                   timezone="Europe/Berlin")  # fmt: skip
    assert rows(berlin) == [("2024-01-01", 3), ("2024-01-02", 3)]
    first_day = ["2024-01-01", "2024-01-01"]
    assert rows(query(shop, metrics=["events"], date_range=first_day)) == [(4,)]
    assert rows(
        query(shop, metrics=["events"], date_range=first_day, timezone="Europe/Berlin")
    ) == [(3,)]
    hours = query(shop, metrics=["events"], dimensions=["time:hour"])
    assert rows(hours)[0] == ("2024-01-01T10:00:00", 3)
    months = query(shop, metrics=["events"], dimensions=["time:month"], date_range="all")
    assert rows(months) == [("2024-01-01", 6)]


def test_dimensions_group_and_order(shop: Env) -> None:
    by_event = query(shop, metrics=["events"], dimensions=["event:name"],
                     filters=[["is", "type", ["track"]]])  # fmt: skip
    assert rows(by_event) == [("Signup", 2)]
    by_plan = query(shop, metrics=["events"], dimensions=["props:plan"])
    assert rows(by_plan) == [(None, 4), ("free", 1), ("pro", 1)]
    by_source = query(shop, metrics=["pageviews"], dimensions=["utm_source", "page"],
                      filters=[["is", "utm_source", ["news"]]])  # fmt: skip
    assert rows(by_source) == [("news", "/pricing", 1)]
    ascending = query(shop, metrics=["events", "users"], dimensions=["type"],
                      order_by=[["users", "asc"]])  # fmt: skip
    assert rows(ascending) == [("track", 2, 2), ("page", 4, 3)]
    assert rows(query(shop, metrics=["events"], dimensions=["type"], limit=1, page=2)) == [
        ("track", 2)
    ]


def test_a_breakdown_lists_only_groups_that_have_what_was_asked(shop: Env) -> None:
    """The Signup tracks have no page: no `null` row with 0 pageviews."""
    by_page = query(shop, metrics=["pageviews"], dimensions=["page"])
    assert rows(by_page) == [("/", 2), ("/pricing", 1)]
    both = query(shop, metrics=["pageviews", "events"], dimensions=["page"])
    assert rows(both) == [("/", 2, 3), ("/pricing", 1, 1), (None, 0, 2)]


@pytest.mark.parametrize(
    "filters, events",
    [
        ([["contains", "page", ["/pricing"]]], 1),
        ([["is_not", "page", ["/"]]], 3),  # /pricing, and the two tracks without a page
        ([["matches", "page", ["^/pri", "^/nowhere"]]], 1),
        ([["not", ["is", "type", ["page"]]]], 2),
        ([["or", [["is", "event", ["Signup"]], ["is", "page", ["/pricing"]]]]], 3),
        ([["and", [["is", "type", ["page"]], ["is", "user", ["a1"]]]]], 2),
        ([["is", "props:plan", ["pro", "free"]], ["is", "event:name", ["Signup"]]], 2),
        ([["is", "country", ["DE"]]], 0),
    ],
)
def test_filters(shop: Env, filters: list[Any], events: int) -> None:
    assert rows(query(shop, metrics=["events"], filters=filters)) == [(events,)]


def test_linked_ids_count_as_one_user(shop: Env) -> None:
    send(shop, [{"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "e7",
                 "timestamp": "2024-01-01T10:07:00Z"}])  # fmt: skip
    assert rows(query(shop, metrics=["users"])) == [(4,)]  # u1 (with a1), a2, u2, a3


def test_another_projects_events_are_not_counted(shop: Env) -> None:
    other = shop.runtime.metadata.create_project(1, "other")
    _, key = shop.runtime.metadata.create_key(other.slug, "write")
    send(shop, [dict(e, messageId=f"o-{e['messageId']}") for e in EVENTS], key=key)
    assert rows(query(shop, metrics=["events"])) == [(6,)]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"metrics": ["bounces"]}, "metrics[0]"),
        ({"metrics": []}, "metrics"),
        ({"metrics": ["events"], "dimensions": ["planet"]}, "dimensions[0]"),
        ({"metrics": ["events"], "dimensions": ["time:fortnight"]}, "dimensions[0]"),
        ({"metrics": ["events"], "filters": [["like", "page", ["/"]]]}, "filters[0][0]"),
        ({"metrics": ["events"], "filters": [["is", "page", []]]}, "filters[0][2]"),
        ({"metrics": ["events"], "filters": [["matches", "page", ["("]]]}, "filters[0][2][0]"),
        ({"metrics": ["events"], "filters": [["is", "time:day", ["x"]]]}, "filters[0][1]"),
        ({"metrics": ["events"], "date_range": "fortnight"}, "date_range"),
        ({"metrics": ["events"], "date_range": ["2024-02-01", "2024-01-01"]}, "date_range"),
        ({"metrics": ["events"], "timezone": "Mars/Olympus"}, "timezone"),
        ({"metrics": ["events"], "order_by": [["users", "desc"]]}, "order_by[0]"),
        ({"metrics": ["events"], "limit": 0}, "limit"),
        ({"metrics": ["events"], "page": 0}, "page"),
        ({"metrics": ["events"], "sort": "x"}, "sort"),
        # a query by a visit dimension asks what a visit knows
        ({"metrics": ["users"], "dimensions": ["entry_page"]}, "metrics[0]"),
        ({"metrics": ["visits"], "dimensions": ["entry_page", "page"]}, "dimensions[1]"),
        ({"metrics": ["visits"], "filters": [["and", [["is", "visit:source", ["Google"]],
                                                     ["is", "page", ["/"]]]]]}, "filters[0]"),
    ],
)  # fmt: skip
def test_a_bad_query_is_refused_naming_its_field(
    env: Env, body: dict[str, Any], field: str
) -> None:
    response = env.client.post(
        "/api/v1/query", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_a_write_key_cannot_query(env: Env) -> None:
    response = env.client.post(
        "/api/v1/query", json={"metrics": ["events"]}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "shortcut, first, last",
    [
        ("day", date(2024, 1, 8), date(2024, 1, 8)),
        ("7d", date(2024, 1, 2), date(2024, 1, 8)),
        ("month", date(2024, 1, 1), date(2024, 1, 8)),
        ("12mo", date(2023, 2, 1), date(2024, 1, 8)),
        ("year", date(2024, 1, 1), date(2024, 1, 8)),
    ],
)
def test_relative_ranges_end_today_in_the_querys_time_zone(
    shortcut: str, first: date, last: date
) -> None:
    now = datetime(2024, 1, 7, 23, 30, tzinfo=UTC)  # already 8 January in Berlin
    q = stats.parse(
        {"metrics": ["events"], "date_range": shortcut, "timezone": "Europe/Berlin"}, now
    )
    assert (q.first_day, q.last_day) == (first, last)
    assert q.start == datetime(first.year, first.month, first.day) - (
        datetime(2024, 1, 1, 1) - datetime(2024, 1, 1)
    )  # local midnight is 23:00 UTC the day before


def test_a_value_with_a_quote_is_a_literal_not_sql(shop: Env) -> None:
    tricky = ["is", "page", ["/' OR 1=1 --"]]
    assert rows(query(shop, metrics=["events"], filters=[tricky])) == [(0,)]
    with pytest.raises(BadRequest):
        stats.parse({"metrics": ["events; DROP TABLE x"]}, datetime.now(UTC))


@pytest.mark.parametrize(
    "body, joined",
    [
        ({"metrics": ["events"], "dimensions": ["event"]}, False),
        ({"metrics": ["visitors", "visits"], "filters": [["is", "event", ["person"]]]}, False),
        ({"metrics": ["users"]}, True),
        ({"metrics": ["events"], "dimensions": ["user"]}, True),
        ({"metrics": ["events"], "filters": [["not", ["or", [["is", "user", ["a"]]]]]]}, True),
    ],
)
def test_linked_ids_are_joined_only_when_people_are_asked_about(
    body: dict[str, Any], joined: bool
) -> None:
    sql = stats.build(stats.parse(body, datetime.now(UTC)), 1, DuckDBFlavor("ev", "ids"))
    assert ("LEFT JOIN ids" in sql) is joined


def visit_page(visitor: int, moment: str, url: str, referrer: str | None = None) -> dict[str, Any]:
    context = web(f"198.51.100.{visitor}", FIREFOX if visitor % 2 else CHROME, url)
    if referrer:
        context["page"]["referrer"] = referrer
    return {"type": "page", "anonymousId": f"a{visitor}", "messageId": f"v{visitor}-{moment}",
            "timestamp": f"2024-02-{moment}:00Z", "context": context}  # fmt: skip


def test_a_visit_counts_once_by_what_it_began_with(env: Env) -> None:
    """Visit dimensions: a visit is attributed to its first event's source and campaign and
    its first pageview's path (entry) — not split by the internal referrers of later pages —
    ends on its last pageview (exit), and counts in the range and bucket it began in."""
    google = "https://www.google.com/"
    send(env, [
        visit_page(6, "01T12:00", "https://shop.example/blog?utm_campaign=spring", google),
        visit_page(6, "01T12:10", "https://shop.example/pricing", "https://shop.example/blog"),
        {"type": "track", "anonymousId": "a6", "event": "Signup", "messageId": "v6-signup",
         "timestamp": "2024-02-01T12:12:00Z", "context": web("198.51.100.6", CHROME)},
        visit_page(6, "01T12:20", "https://shop.example/thanks", "https://shop.example/pricing"),
        visit_page(7, "01T12:00", "https://shop.example/"),  # direct; then 50 minutes away
        visit_page(7, "01T12:50", "https://shop.example/blog", google),
        visit_page(7, "01T23:50", "https://shop.example/late"),  # runs past midnight
        visit_page(7, "02T00:10", "https://shop.example/later"),
    ])  # fmt: skip
    day = {"date_range": ["2024-02-01", "2024-02-01"]}
    metrics = ["visits", "visitors", "pageviews", "bounce_rate", "visit_duration"]
    by_source = query(env, metrics=metrics, dimensions=["visit:source"], **day)
    assert rows(by_source) == [("Google", 2, 2, 4, 50.0, 600.0), (None, 2, 1, 3, 50.0, 600.0)]
    by_entry = query(env, metrics=["visits"], dimensions=["entry_page", "visit:exit_page"], **day)
    assert sorted(rows(by_entry), key=str) == sorted(
        [("/blog", "/thanks", 1), ("/blog", "/blog", 1), ("/", "/", 1), ("/late", "/later", 1)],
        key=str,
    )
    campaign = query(env, metrics=["visits", "events"], dimensions=["visit:utm_campaign"],
                     filters=[["is", "visit:source", ["Google"]]], **day)  # fmt: skip
    assert rows(campaign) == [("spring", 1, 4), (None, 1, 1)]
    # The event-level dimension sees each event's own referrer: the internal pages have none
    by_event_source = query(env, metrics=["pageviews"], dimensions=["source"], **day)
    assert rows(by_event_source) == [(None, 4), ("Google", 2)]  # 00:10 is the next day
    # Events filtered by their visit: the pages and events of the visits from Google
    from_google = query(env, metrics=["pageviews", "events"], dimensions=["page"],
                        filters=[["is", "visit:source", ["Google"]]], **day)  # fmt: skip
    assert rows(from_google) == [("/blog", 2, 2), ("/pricing", 1, 1), ("/thanks", 1, 1),
                                 (None, 0, 1)]  # fmt: skip
    # Visits filtered by their events: those that saw /pricing
    priced = query(env, metrics=["visits", "pageviews"], dimensions=["entry_page"],
                   filters=[["is", "page", ["/pricing"]]], **day)  # fmt: skip
    assert rows(priced) == [("/blog", 1, 3)]
    # Conversions attributed to the visit's source: of Google's two visitors, one signed up
    converted = query(env, metrics=["visitors", "conversion_rate"], dimensions=["visit:source"],
                      filters=[["is", "event", ["Signup"]]], **day)  # fmt: skip
    assert rows(converted) == [("Google", 1, 50.0)]
    totals = query(env, metrics=["visits", "conversion_rate"],
                   filters=[["is", "event", ["Signup"]], ["is", "visit:source", ["Google"]]],
                   **day)  # fmt: skip
    assert rows(totals) == [(1, 50.0)]
    # The visit that began at 23:50 counts on its day, whole (its 00:10 pageview too)
    per_day = query(env, metrics=["visits", "visit_duration"], interval="day",
                    date_range=["2024-02-01", "2024-02-02"])  # fmt: skip
    assert rows(per_day) == [("2024-02-01", 4, 600.0), ("2024-02-02", 0, None)]


def test_conversions_by_source_match_sql_written_here(env: Env) -> None:
    """Conversions attributed per visit, against the same written as SQL over the events
    (DuckDB's SQL endpoint): visits split at 30 minutes of quiet, each visit's source is its
    first event's, a visitor converted if one of their visits from that source had a signup."""
    if not isinstance(env.runtime.warehouse.flavor, DuckDBFlavor):
        pytest.skip("the SQL below is DuckDB's (window functions)")
    rng = random.Random(19)
    events: list[dict[str, Any]] = []
    referrers = ["https://www.google.com/", "https://news.ycombinator.com/", None]
    for v in range(30):
        moment = datetime(2024, 3, 1, 8, tzinfo=UTC) + timedelta(minutes=rng.randrange(600))
        for n in range(rng.randrange(2, 9)):
            moment += timedelta(minutes=rng.choice([1, 5, 12, 40, 90]), seconds=v)
            context = web(f"203.0.113.{v}", CHROME, "https://shop.example/p")
            referrer = rng.choice(referrers)
            if referrer:
                context["page"]["referrer"] = referrer
            event: dict[str, Any] = {"type": "page", "anonymousId": f"s{v}",
                                     "messageId": f"s{v}-{n}", "context": context,
                                     "timestamp": moment.isoformat()}  # fmt: skip
            if rng.random() < 0.2:
                event = {**event, "type": "track", "event": "Signed Up"}
            events.append(event)
    send(env, events)
    ours = query(env, metrics=["visitors", "conversion_rate"], dimensions=["visit:source"],
                 filters=[["is", "event", ["Signed Up"]]], date_range=["2024-03-01", "2024-03-01"])  # fmt: skip
    written = env.sql(
        "WITH e AS (SELECT visitor, timestamp, source, event FROM events "
        "  WHERE visitor IS NOT NULL AND NOT coalesce(bot, false)), "
        "g AS (SELECT *, CASE WHEN lag(timestamp) OVER w IS NULL "
        "  OR timestamp - lag(timestamp) OVER w > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS s "
        "  FROM e WINDOW w AS (PARTITION BY visitor ORDER BY timestamp)), "
        "n AS (SELECT *, sum(s) OVER (PARTITION BY visitor ORDER BY timestamp "
        "  ROWS UNBOUNDED PRECEDING) AS v FROM g), "
        "visits AS (SELECT visitor, min(timestamp) AS began, "
        "  first(source ORDER BY timestamp) AS source, "
        "  bool_or(coalesce(event = 'Signed Up', false)) AS converted FROM n GROUP BY visitor, v) "
        "SELECT source, count(DISTINCT visitor) FILTER (WHERE converted) AS conv, "
        "  count(DISTINCT visitor) AS everyone FROM visits "
        "WHERE began >= TIMESTAMP '2024-03-01' AND began < TIMESTAMP '2024-03-02' "
        "GROUP BY source HAVING conv > 0"
    )
    expected = {
        r["source"]: [r["conv"], round(100.0 * r["conv"] / r["everyone"], 2)] for r in written
    }
    assert len(expected) >= 2  # the traffic converts from more than one source
    assert {r["dimensions"][0]: r["metrics"] for r in ours["results"]} == expected


def test_a_visitor_of_thousands_of_visits_is_counted_in_bounded_memory(env: Env) -> None:
    """One visitor (one IP and user agent: a busy office, an unflagged crawler) with 6,000
    visits of two pageviews a minute apart, each 31 minutes after the last. ClickHouse, which keeps no visits, makes
    them from each visitor's events per query: that must take memory as events, not as
    visits × events (which went past its 2 GB a query at 10 M events)."""
    start = datetime(2024, 3, 1, tzinfo=UTC)
    pages = []
    for k in range(6000):
        began = start + timedelta(minutes=32 * k)
        for step, path in ((0, "/in" if k % 2 else "/"), (1, "/out")):
            at = (began + timedelta(minutes=step)).isoformat()
            pages.append({"type": "page", "anonymousId": "busy", "messageId": f"b{k}-{step}",
                          "timestamp": at,
                          "context": web("198.51.100.9", CHROME, f"https://shop.example{path}")})  # fmt: skip
    for first in range(0, len(pages), 500):
        send(env, pages[first : first + 500])
    days = {"date_range": "all"}
    totals = query(env, metrics=["visits", "visitors", "pageviews", "bounce_rate",
                                 "visit_duration"], **days)  # fmt: skip
    assert rows(totals) == [(6000, 1, 12000, 0.0, 60.0)]
    entries = query(env, metrics=["visits"], dimensions=["entry_page", "visit:exit_page"], **days)
    assert sorted(rows(entries)) == [("/", "/out", 3000), ("/in", "/out", 3000)]
