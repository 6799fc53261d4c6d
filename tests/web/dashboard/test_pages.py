"""Each page shows what the stored events say (the numbers checked, not just a 200)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest

from roost.errors import BadRequest
from roost.storage.metadata import project_config
from tests.conftest import Client, Env
from tests.web.dashboard.conftest import csrf_of, send


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def site(env: Env) -> Env:
    """Three visitors, a sign-up funnel, a game session with a run and an error."""
    events = []
    for i, user in enumerate(["u1", "u2", "u3"]):
        events.append({"type": "page", "userId": user, "name": "/", "messageId": f"p{i}",
                       "properties": {"path": "/", "url": "https://shop.test/"}, "context": {"ip": f"198.51.100.{i}"},
                       "timestamp": ago(hours=2, minutes=i)})  # fmt: skip
    events += [
        {"type": "page", "userId": "u1", "name": "/pricing", "messageId": "p9",
         "properties": {"path": "/pricing", "url": "https://shop.test/pricing"},
         "context": {"ip": "198.51.100.0"},
         "timestamp": ago(hours=1, minutes=59)},
        {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "s1",
         "timestamp": ago(hours=1, minutes=58)},
        {"type": "track", "userId": "u2", "event": "Signed Up", "messageId": "s2",
         "timestamp": ago(hours=1, minutes=50)},
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o1",
         "properties": {"revenue": 30}, "timestamp": ago(hours=1, minutes=40)},
        {"type": "identify", "userId": "u1", "messageId": "i1",
         "traits": {"plan": "pro", "email": "u1@shop.test"}, "timestamp": ago(hours=1)},
    ]  # fmt: skip
    send(env, events)
    session, player = "6f1c2d3e-0000-4000-8000-00000000000a", "c" * 32

    def game(kind: str, name: str, minutes: int, **extra: Any) -> dict[str, Any]:
        return {"build_version": "1.0", "session_id": session, "player_hash": player,
                "ts": ago(minutes=minutes), "type": kind, "name": name, **extra}  # fmt: skip

    game_events = [
        game("session", "Session:Start", 30),
        game("progression", "Start:Run", 29),
        game("progression", "Fail:Run", 20),
        game("error", "NullReferenceException", 19, data={"signature": "sig-null"}),
    ]
    response = env.client.post(
        "/api/v1/events", json={"events": game_events}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    return env


def stat(html: str, label: str) -> str:
    found = re.search(rf'<span class="label">{label}</span><span class="value"[^>]*>([^<]*)<', html)
    assert found, f"no stat {label}"
    return found.group(1)


def test_overview_counts_events_and_draws_them_over_time(site: Env, owner: Client) -> None:
    html = owner.get("/p/default/?period=7d").text
    assert stat(html, "Events") == "12"
    assert stat(html, "Users") == "4"
    chart = re.search(r'<svg class="chart timeseries"[^>]*data-points="(\d+)"', html)
    assert chart and chart.group(1) == "7"  # every day of the period, empty ones as zeros
    assert 'href="/p/default/?period=7d&amp;f=event%3D%3DSigned%20Up">Signed Up</a>' in html
    # all received in the last five minutes, none of them happened in it
    assert re.search(r'id="live-events">0<', html)


def test_live_counter_counts_what_happened_in_the_last_five_minutes(
    site: Env, owner: Client
) -> None:
    """By the events' own time: not a backfill arriving now, not a clock in the future."""
    send(site, [
        {"type": "track", "userId": "u1", "event": "Now", "timestamp": ago(minutes=1)},
        {"type": "track", "userId": "u9", "event": "Now", "timestamp": ago(minutes=4)},
        {"type": "track", "userId": "u8", "event": "Old", "timestamp": ago(minutes=6)},
        {"type": "track", "userId": "u7", "event": "Ahead", "timestamp": ago(minutes=-30)},
    ])  # fmt: skip
    assert owner.get("/p/default/live-counter").json() == {"events": 2, "people": 2}


def test_web_page_shows_visitors_pages_and_bounce_rate(site: Env, owner: Client) -> None:
    html = owner.get("/p/default/web?period=7d").text
    assert stat(html, "Pageviews") == "4"
    assert stat(html, "Visitors") == "4"  # three page IPs, and the test client's for the rest
    pages = re.findall(
        r'<span class="label">(?:<a [^>]*>)?([^<]*)(?:</a>)?</span><span class="value">([^<]*)</span>',
        html,
    )
    assert ("/", "3") in pages and ("/pricing", "1") in pages

    def panel(heading: str) -> list[tuple[str, str]]:
        part = html.split(f"<h3>{heading} ", 1)[1].split("</ol>", 1)[0]
        return re.findall(
            r'<span class="label">(?:<a [^>]*>)?([^<]*)(?:</a>)?</span><span class="value">([^<]*)</span>',
            part,
        )

    # u1's visit began on / and ended on /pricing; u2's and u3's were / alone
    assert panel("Entry pages") == [("/", "3")]
    assert panel("Exit pages") == [("/", "2"), ("/pricing", "1")]
    assert panel("Sources") == [("Direct / None", "4")]  # each visitor once, and the tracks'
    assert "set geoip_db" in html  # no country known without a GeoIP database: says why


def test_game_page_shows_runs_and_errors(site: Env, owner: Client) -> None:
    html = owner.get("/p/default/game?period=7d").text
    assert stat(html, "Sessions") == "1"
    assert "1 starts · 0.0% complete · 100.0% fail" in html
    assert "sig-null" in html
    # a signature is a filter: the page of that error's events alone
    filtered = owner.get(href(html, "sig-null")).text
    assert '<span class="chip">Error signature <a' in filtered
    assert stat(filtered, "Sessions") == "1"  # the sessions that had it


def test_product_page_builds_a_funnel_from_typed_steps(site: Env, owner: Client) -> None:
    html = owner.get(
        "/p/default/product?period=7d&step=/pricing&step=Signed+Up&step=Order+Completed&window=1d"
    ).text
    assert "<strong>1. /pricing</strong> <span>1 people" in html
    assert "<strong>3. Order Completed</strong> <span>1 people · 100% of the first step" in html
    assert 'class="retention"' in html


def test_product_page_names_a_bad_funnel_field(site: Env, owner: Client) -> None:
    html = owner.get("/p/default/product?step=A&step=B&window=forever").text
    assert 'class="problem"' in html and "window" in html


def test_events_explorer_filters_and_opens_one_event(site: Env, owner: Client) -> None:
    html = owner.get("/p/default/events?event=Signed+Up").text
    assert html.count("<td>Signed Up</td>") == 2 and "Order Completed" not in html
    html = owner.get("/p/default/events?user=u1&type=identify").text
    assert "/p/default/events/i1" in html and "/p/default/events/s1" not in html
    detail = owner.get("/p/default/events/o1").text
    assert "Order Completed" in detail and "&#34;revenue&#34;: 30" in detail
    assert owner.get("/p/default/events/nope").status_code == 404


def test_the_explorer_lists_what_a_destination_is_waiting_to_send_or_set_aside(
    env: Env, owner: Client
) -> None:
    project = env.runtime.metadata.project("default").id
    store = env.runtime.destinations
    store.set(project, {"name": "paused", "kind": "webhook", "url": "http://127.0.0.1:9/x",
                        "enabled": False, "types": ["track"]})  # fmt: skip
    store.set(project, {"name": "unreachable", "kind": "webhook", "url": "http://127.0.0.1:9/x",
                        "max_attempts": 1, "batch_seconds": 0.01})  # fmt: skip
    env.runtime.forwarders.poke()
    send(env, [{"type": "track", "userId": "w", "event": "Waits", "messageId": "w1"},
               {"type": "identify", "userId": "w", "messageId": "w2"}])  # fmt: skip
    deadline = time.monotonic() + 10
    unreachable = next(d for d in store.configured(project) if d.name == "unreachable")
    while not store.letters(unreachable.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = owner.get("/p/default/events?destination=paused&status=waiting").text
    assert (
        "/p/default/events/w1" in waiting and "/p/default/events/w2" not in waiting
    )  # tracks only
    aside = owner.get("/p/default/events?destination=unreachable&status=dead_lettered").text
    assert "/p/default/events/w1" in aside and "/p/default/events/w2" in aside
    settings = owner.get("/p/default/settings").text
    assert "/p/default/events?destination=unreachable&amp;status=dead_lettered" in settings
    refused = owner.get("/p/default/events?destination=nope")
    assert refused.status_code == 400 and "destination" in refused.text
    listed = env.client.get("/api/v1/destinations", headers={"X-Write-Key": env.read_key}).json()
    paused = next(d for d in listed["destinations"] if d["name"] == "paused")
    assert paused["lag"] == 2 and 0 <= paused["oldest_waiting_seconds"] < 60
    scraped = env.metrics()
    assert 'roost_destination_backlog_events{destination="paused",project="default"} 2.0' in scraped
    assert 'roost_destination_oldest_waiting_seconds{destination="paused",project="default"}' in (
        scraped
    )
    assert "(oldest " in settings


def test_an_event_page_says_where_it_went(site: Env, owner: Client) -> None:
    project = site.runtime.metadata.project("default").id
    site.runtime.destinations.set(project, {"name": "pages-only", "kind": "webhook",
                                            "url": "http://127.0.0.1:9/x", "types": ["page"]})  # fmt: skip
    trace = owner.get("/p/default/events/o1").text.split('id="trace"', 1)[1]
    assert "Stored at Log offset" in trace
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", trace)
    assert cells == [("pages-only", "filtered", "left out by its types rule")]


def test_profile_shows_traits_and_timeline(site: Env, owner: Client) -> None:
    assert owner.get("/p/default/profiles?user=u1").headers["location"] == "/p/default/profiles/u1"
    html = owner.get("/p/default/profiles/u1").text
    assert "&#34;plan&#34;: &#34;pro&#34;" in html
    assert html.index("/p/default/events/i1") < html.index("/p/default/events/p0")  # newest first
    assert owner.get("/p/default/profiles/nobody").status_code == 404


def test_profile_lists_the_persons_audiences(site: Env, owner: Client) -> None:
    project = site.runtime.metadata.project("default").id
    site.runtime.project_settings.set_audiences(project, [
        {"name": "Pros", "conditions": [{"trait": "plan", "in": ["pro"]}]},
        {"name": "Free", "conditions": [{"trait": "plan", "in": ["free"]}]},
    ])  # fmt: skip
    site.runtime.audience_definitions.forget()
    listed = re.search(r'<dd id="audiences">(.*?)</dd>', owner.get("/p/default/profiles/u1").text)
    assert listed and re.sub(r"<[^>]+>", "", listed.group(1)) == "Pros"


def test_the_quarantine_is_listed_and_replayed_from_the_settings_page(
    env: Env, owner: Client
) -> None:
    env.runtime.contract_store.set(1, "Paid", {"type": "object", "required": ["amount"]}, "block")
    env.runtime.contracts.plan.forget()
    sent = env.client.post("/v1/track", json={"userId": "q", "event": "Paid", "messageId": "q1"},
                           headers={"X-Write-Key": env.write_key})  # fmt: skip
    assert sent.status_code == 422
    page = owner.get("/p/default/settings").text.split('id="quarantine"', 1)[1]
    assert "1 event the tracking plan blocked" in page and "amount" in page
    env.runtime.contract_store.set(1, "Paid", {"type": "object"}, "block")  # the plan, fixed
    env.runtime.contracts.plan.forget()
    token = csrf_of(owner.get("/p/default/settings").text)
    after = owner.post("/p/default/settings/quarantine/replay", data={"csrf": token}).text
    assert "1 stored, 0 still held" in after
    assert [r["message_id"] for r in env.sql("SELECT message_id FROM events")] == ["q1"]


def test_what_was_seen_is_listed_and_becomes_a_draft_plan(env: Env, owner: Client) -> None:
    """Two events seen, one already planned: the page lists the drift, and its button adds
    the other to the plan as `allow` with its properties' types, the planned one untouched."""
    env.runtime.contract_store.set(1, "Paid", {"type": "object", "required": ["amount"]}, "omit")
    env.runtime.contracts.plan.forget()
    send(env, [{"type": "track", "userId": "d", "event": "Paid", "properties": {"amount": 3}},
               {"type": "track", "userId": "d", "event": "Searched", "properties": {"q": "x"}}])  # fmt: skip
    page = owner.get("/p/default/settings").text
    drift = page.split('id="drift"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r"<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", drift
    )
    assert ("new property", "Searched", "q", "string") in rows
    assert ("new event", "Paid", "", "") in rows
    assert "Add 1 event seen but not planned" in page
    after = owner.post("/p/default/settings/plan/draft", data={"csrf": csrf_of(page)}).text
    assert "1 contract added from what was seen" in after
    contracts = project_config.export(env.runtime.config_stores(), 1)["contracts"]
    plan = {c["target"]: (c["action"], c["schema"]) for c in contracts}
    assert plan["Searched"] == (
        "allow",
        {"type": "object", "properties": {"q": {"type": "string"}}},
    )
    assert plan["Paid"] == ("omit", {"type": "object", "required": ["amount"]})
    assert "seen but not planned" not in owner.get("/p/default/settings").text


def test_a_new_key_is_shown_once_and_works(env: Env, owner: Client) -> None:
    token = csrf_of(owner.get("/p/default/settings").text)
    html = owner.post(
        "/p/default/settings/keys", data={"csrf": token, "kind": "read", "label": "bi"}
    ).text
    raw = re.search(r'<code id="new-key">([^<]+)</code>', html)
    assert raw
    assert raw.group(1) not in owner.get("/p/default/settings").text
    ok = env.client.post("/api/v1/sql", json={"sql": "SELECT 1 AS one"},
                         headers={"Authorization": f"Bearer {raw.group(1)}"})  # fmt: skip
    assert ok.status_code == 200


def test_a_revoked_key_is_refused(env: Env, owner: Client) -> None:
    key = next(k for k in env.runtime.metadata.list_keys("default") if k.kind == "read")
    token = csrf_of(owner.get("/p/default/settings").text)
    response = owner.post(f"/p/default/settings/keys/{key.id}/revoke", data={"csrf": token})
    assert response.status_code == 303
    assert f'class="revoked" data-key="{key.id}"' in owner.get("/p/default/settings").text
    deadline = time.monotonic() + 3 * env.settings.key_cache_seconds
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = env.client.post(
            "/api/v1/sql",
            json={"sql": "SELECT 1"},
            headers={"Authorization": f"Bearer {env.read_key}"},
        ).status_code
        time.sleep(0.05)
    assert status == 401


def test_configuration_is_saved_whole_or_refused_with_the_field(env: Env, owner: Client) -> None:
    token = csrf_of(owner.get("/p/default/settings").text)
    bad = owner.post("/p/default/settings/config",
                     data={"csrf": token, "config": "unplanned: maybe\n"})  # fmt: skip
    assert bad.status_code == 400 and "unplanned" in bad.text and "unplanned: maybe" in bad.text
    good = owner.post(
        "/p/default/settings/config",
        data={"csrf": token, "config": "unplanned: block\ncontracts:\n- target: Signed Up\n  action: block\n  schema: {type: object}\n"},
    )  # fmt: skip
    assert good.status_code == 303
    assert env.runtime.contract_store.list(1)[1] == "block"
    html = owner.get("/p/default/settings").text
    assert "Unplanned events: <strong>block</strong> · 1 contracts" in html


def test_budget_meter_marks_80_and_100_percent(env: Env, owner: Client) -> None:
    env.runtime.metadata.update_workspace("default", monthly_budget=10)
    send(
        env,
        [{"type": "track", "userId": "u", "event": "E", "messageId": f"b{i}"} for i in range(9)],
    )
    html = owner.get("/p/default/settings").text
    assert 'class="meter warn"' in html and "9 of 10 events this month (90.0%)" in html


def test_events_explorer_pages_back_in_time(env: Env, owner: Client) -> None:
    send(env, [{"type": "track", "userId": "u", "event": f"E{i:02d}", "messageId": f"e{i}",
                "timestamp": ago(minutes=60 - i)} for i in range(60)])  # fmt: skip
    first = owner.get("/p/default/events").text
    shown = re.findall(r"<td>(E\d\d)</td>", first)
    assert shown == [f"E{i:02d}" for i in range(59, 9, -1)]  # newest first, 50 of them
    older = re.search(r'href="(\?event=[^"]*before=[^"]+)"', first)
    assert older
    rest = owner.get("/p/default/events" + older.group(1).replace("&amp;", "&")).text
    assert re.findall(r"<td>(E\d\d)</td>", rest) == [f"E{i:02d}" for i in range(9, -1, -1)]


def test_web_page_of_a_project_without_visits_shows_dashes_not_nan(env: Env, owner: Client) -> None:
    send(env, [{"type": "page", "anonymousId": "bot", "messageId": "b1",
                "context": {"ip": "198.51.100.9",
                            "userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}}])  # fmt: skip
    for period in ("7d", "all"):
        html = owner.get(f"/p/default/web?period={period}").text
        assert stat(html, "Views per visit") == "–"  # a bot's pageview: 0 in 0 visits


def api(env: Env, body: dict[str, Any]) -> list[Any]:
    response = env.client.post(
        "/api/v1/query", json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return [r["metrics"] for r in response.json()["results"]]


def href(html: str, text: str) -> str:
    found = re.search(rf'<a href="([^"]*)"[^>]*>{re.escape(text)}</a>', html)
    assert found, f"no link {text!r}"
    return found.group(1).replace("&amp;", "&")


def test_a_row_adds_a_filter_that_every_panel_honours(site: Env, owner: Client) -> None:
    """Click a page: the URL holds the filter, a chip shows it, the totals are the Stats
    API's with that filter; turn it around, remove it; the period links keep it."""
    html = owner.get("/p/default/web?period=7d").text
    filtered_url = href(html, "/pricing")
    assert "f=page%3D%3D%2Fpricing" in filtered_url and "period=7d" in filtered_url
    html = owner.get(filtered_url).text
    assert '<span class="chip">Page <a' in html and "<strong>/pricing</strong>" in html
    names = ["visitors", "visits", "pageviews"]
    (wanted,) = api(site, {"metrics": names, "date_range": "7d",
                           "filters": [["is", "page", ["/pricing"]]]})  # fmt: skip
    assert wanted == [1, 1, 1]
    assert [stat(html, "Visitors"), stat(html, "Visits"), stat(html, "Pageviews")] == [
        "1",
        "1",
        "1",
    ]
    # the visit that saw /pricing began on /: the entry pages panel counts it there
    part = html.split("<h3>Entry pages ", 1)[1].split("</ol>", 1)[0]
    assert '>/</a></span><span class="value">1<' in part
    assert 'href="/p/default/web?period=30d&amp;f=page%3D%3D%2Fpricing"' in html  # kept
    assert 'href="/p/default/game?period=7d&amp;f=page%3D%3D%2Fpricing"' in html  # other pages

    html = owner.get(href(html, "is")).text  # turned around
    assert stat(html, "Pageviews") == "3" and "<strong>/pricing</strong>" in html
    html = owner.get(href(html, "×")).text  # removed
    assert stat(html, "Pageviews") == "4" and 'class="chip"' not in html

    # a visit filter on the overview: the events of visits from Google (none here)
    html = owner.get("/p/default/?period=7d&f=visit:source%3D%3DGoogle").text
    assert stat(html, "Events") == "0" and "<strong>Google</strong>" in html

    refused = owner.get("/p/default/web?f=planet%3D%3DMars")
    assert refused.status_code == 400 and "f[0]" in refused.text


def test_a_range_of_days_compared_with_the_one_before(env: Env, owner: Client) -> None:
    """A custom range (today) is the Stats API's over those days; compared with the
    previous period (yesterday), each total shows its change and the chart one more line."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def view(i: int, moment: datetime) -> dict[str, Any]:
        return {"type": "page", "anonymousId": f"r{i}", "messageId": f"r{i}",
                "timestamp": moment.isoformat().replace("+00:00", "Z"),
                "context": {"ip": f"192.0.2.{i}", "page": {"url": "https://shop.test/"}}}  # fmt: skip

    earlier = today + (datetime.now(UTC) - today) / 2  # today, and past, whenever it runs
    send(env, [view(1, earlier), view(2, earlier), view(3, today - timedelta(hours=3))])
    day = today.date().isoformat()
    url = f"/p/default/web?period=custom&from={day}&to={day}"
    (wanted,) = api(env, {"metrics": ["visitors", "pageviews"], "date_range": [day, day]})
    html = owner.get(url).text
    assert (
        [stat(html, "Visitors"), stat(html, "Pageviews")] == [str(v) for v in wanted] == ["2", "2"]
    )
    assert 'class="sub change"' not in html  # nothing compared yet
    html = owner.get(url + "&compare=previous").text
    changes = re.findall(r'<span class="sub change">([^<]*)</span>', html)
    assert changes[:3] == ["+100%", "+100%", "+100%"]  # visitors, visits, pageviews: 2 vs 1
    assert "visitors, the previous period" in html  # the dashed line's legend
    # choosing a preset period keeps the comparison and drops the custom days
    assert 'href="/p/default/web?period=7d&amp;compare=previous"' in html

    refused = owner.get("/p/default/web?period=custom&from=yesterday&to=" + day)
    assert refused.status_code == 400 and "from: must be a date" in refused.text


def test_goals_convert_and_are_attributed_to_the_visit(env: Env, owner: Client) -> None:
    """Goals from the project's configuration: each one's converted visitors, conversions and
    rate; chosen, its conversions by the source and entry page of the visit they were in."""
    google = "https://www.google.com/"

    def view(i: int, path: str, minutes: int, referrer: str | None = None) -> dict[str, Any]:
        page: dict[str, Any] = {"url": f"https://shop.test{path}"}
        if referrer:
            page["referrer"] = referrer
        return {"type": "page", "anonymousId": f"g{i}", "messageId": f"g{i}-{minutes}",
                "timestamp": ago(minutes=minutes), "context": {"ip": f"192.0.2.{i}", "page": page}}  # fmt: skip

    send(env, [
        view(1, "/", 30, google),
        {"type": "track", "anonymousId": "g1", "event": "Signed Up", "messageId": "g1-s",
         "timestamp": ago(minutes=28), "context": {"ip": "192.0.2.1"}},
        view(2, "/", 30),
        view(3, "/docs/intro", 30, google),
    ])  # fmt: skip
    env.runtime.project_settings.set_goals(
        env.runtime.metadata.project("default").id,
        [{"name": "Signed up", "event": "Signed Up"}, {"name": "Docs", "page": "/docs/*"}],
    )
    html = owner.get("/p/default/web").text
    goals = re.findall(r"<tr ?>(?:<td>(?:<a[^>]*>)?([^<]*)(?:</a>)?</td>)"
                       r"<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)  # fmt: skip
    assert goals == [("Signed up", "1", "1", "33.33%"), ("Docs", "1", "1", "33.33%")]
    html = owner.get(href(html, "Signed up")).text
    tables = html.split("by where the visit came from", 1)[1]
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", tables)
    # source: 1 of Google's 2 visitors; entry page: 1 of the 2 who began on /; campaign: 1 of 3
    assert cells == [("Google", "1", "50%"), ("/", "1", "50%"), ("(none)", "1", "33.33%")]


def test_a_panel_downloads_as_csv_with_the_pages_filters(site: Env, owner: Client) -> None:
    html = owner.get("/p/default/web?period=7d&f=page!%3D%2Fpricing").text
    link = href(html, "CSV")  # the first panel's: top pages
    assert link == "/p/default/csv/pages?period=7d&f=page%21%3D%2Fpricing"
    got = owner.get(link)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows == [["page", "pageviews", "visitors"], ["/", "3", "3"]]  # /pricing left out
    assert owner.get("/p/default/csv/nothing").status_code == 404


def test_an_empty_project_shows_how_to_send_its_first_event(
    env: Env, owner: Client, viewer: Client
) -> None:
    html = unescape(owner.get("/p/default/").text)
    assert "No events yet: send the first one" in html
    assert 'data-site="default" data-key="WRITE_KEY"' in html and "/js/roost.js" in html
    assert "/v1/track" in html and "from roost.sdk import Client" in html
    assert 'action="/p/default/settings/keys"' in html  # the key-creation button
    assert 'action="/p/default/settings/keys"' not in viewer.get("/p/default/").text
    # a panel with nothing says why, where Roost knows: no GeoIP database, no countries
    assert "set geoip_db" in owner.get("/p/default/web").text
    # the curl line's event, sent: the page is the project's overview again
    send(env, [{"userId": "user-1", "event": "Hello", "type": "track"}])
    assert "No events yet" not in owner.get("/p/default/?period=all").text
    assert "No events yet" not in owner.get("/p/default/?period=day&f=event%3D%3DNone").text


def test_the_projects_time_zone_cuts_its_days(env: Env, owner: Client) -> None:
    """An event at 02:30 UTC on 10 January is on 9 January in New York: with the project in
    that zone, the dashboard counts it on the 9th and says which zone it shows."""
    send(env, [{"type": "track", "userId": "u", "event": "Late", "messageId": "tz1",
                "timestamp": "2024-01-10T02:30:00Z"}])  # fmt: skip
    project = env.runtime.metadata.project("default").id

    def events_on(day: str) -> str:
        html = owner.get(f"/p/default/?period=custom&from={day}&to={day}").text
        return stat(html, "Events")

    assert (events_on("2024-01-09"), events_on("2024-01-10")) == ("0", "1")  # UTC
    env.runtime.project_settings.set_timezone(project, "America/New_York")
    assert (events_on("2024-01-09"), events_on("2024-01-10")) == ("1", "0")
    assert '<span class="zone"' in owner.get("/p/default/").text
    assert "America/New_York" in owner.get("/p/default/web").text
    with pytest.raises(BadRequest):
        env.runtime.project_settings.set_timezone(project, "Mars/Olympus")


def test_outbound_links_and_downloads_the_tracker_records(env: Env, owner: Client) -> None:
    send(env, [
        {"type": "track", "anonymousId": f"o{i}", "event": event, "messageId": f"o{i}",
         "properties": {"url": url}, "timestamp": ago(minutes=5), "context": {"ip": f"192.0.2.{i}"}}
        for i, (event, url) in enumerate([
            ("Outbound Link: Click", "https://github.com/roost"),
            ("Outbound Link: Click", "https://github.com/roost"),
            ("File Download", "https://shop.test/price-list.pdf"),
        ])
    ])  # fmt: skip
    html = owner.get("/p/default/web").text

    def panel(heading: str) -> list[tuple[str, str]]:
        part = html.split(f"<h3>{heading} ", 1)[1].split("</ol>", 1)[0]
        return re.findall(r'<span class="label">(?:<a [^>]*>)?([^<]*)(?:</a>)?</span>'
                          r'<span class="value">([^<]*)</span>', part)  # fmt: skip

    assert panel("Outbound links") == [("https://github.com/roost", "2")]
    assert panel("File downloads") == [("https://shop.test/price-list.pdf", "1")]
    assert "f=props:url%3D%3D" in href(html, "https://github.com/roost")


def test_the_bucket_under_way_is_drawn_as_not_over(site: Env, owner: Client) -> None:
    """Today by hour: the hours to come are not drawn (no zeros), the hour under way is
    marked incomplete; a past range has no such bucket."""
    # the site's events are hours old: just after midnight UTC today would have none
    send(site, [{"type": "track", "userId": "now", "event": "Now", "messageId": "now1",
                 "timestamp": ago(minutes=0)}])  # fmt: skip
    before = datetime.now(UTC).hour
    html = owner.get("/p/default/?period=day").text
    after = datetime.now(UTC).hour
    chart = re.search(r'data-points="(\d+)"[^>]*data-incomplete="(\w+)"', html)
    assert chart and int(chart.group(1)) in (before + 1, after + 1)
    assert chart.group(2) == "true" and 'class="dot series0 incomplete"' in html
    # the hour under way's segment dotted; just after midnight it is the only point: no line
    assert ('class="line series0 incomplete"' in html) == (int(chart.group(1)) > 1)
    send(site, [{"type": "track", "userId": "old", "event": "Old", "messageId": "old1",
                 "timestamp": "2024-01-03T12:00:00Z"}])  # fmt: skip
    html = owner.get("/p/default/?period=custom&from=2024-01-01&to=2024-01-07").text
    assert 'data-points="7"' in html and 'data-incomplete="false"' in html


def test_game_page_counts_players_and_compares_two_builds(env: Env, owner: Client) -> None:
    """Two players in build 1.0 (one session each, one run completed of two), one in 1.1
    (two sessions, a run completed, and an error 1.0 never had)."""

    def game(build: str, player: str, session: str, kind: str, name: str, minutes: int,
             **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {"build_version": build, "session_id": session, "player_hash": player * 32,
                "ts": ago(minutes=minutes), "type": kind, "name": name, **extra}  # fmt: skip

    s = "6f1c2d3e-0000-4000-8000-0000000000"
    events = [
        game("1.0", "a", f"{s}01", "session", "Session:Start", 50),
        game("1.0", "a", f"{s}01", "progression", "Start:Run", 49),
        game("1.0", "a", f"{s}01", "progression", "Complete:Run", 45),
        game("1.0", "a", f"{s}01", "error", "Gone", 44, data={"signature": "sig-gone"}),
        game("1.0", "b", f"{s}02", "session", "Session:Start", 50),
        game("1.0", "b", f"{s}02", "progression", "Start:Run", 48),
        game("1.0", "b", f"{s}02", "error", "Old", 47, data={"signature": "sig-old"}),
        game("1.1", "c", f"{s}03", "session", "Session:Start", 40),
        game("1.1", "c", f"{s}03", "progression", "Start:Run", 39),
        game("1.1", "c", f"{s}03", "progression", "Complete:Run", 30),
        game("1.1", "c", f"{s}04", "session", "Session:Start", 20),
        game("1.1", "c", f"{s}04", "error", "Old", 19, data={"signature": "sig-old"}),
        game("1.1", "c", f"{s}04", "error", "Crash", 18, data={"signature": "sig-new"}),
    ]
    sent = env.client.post(
        "/api/v1/events", json={"events": events}, headers={"X-Write-Key": env.write_key}
    )
    assert sent.status_code == 200 and sent.json()["rejected"] == 0, sent.text
    html = owner.get("/p/default/game?period=7d").text
    assert (stat(html, "Sessions"), stat(html, "Players"), stat(html, "New players")) == (
        "4", "3", "3")  # fmt: skip
    assert stat(html, "Sessions per player") == "1.33"
    assert 'name="build_a"' in html  # two builds: the comparison form
    html = owner.get("/p/default/game?period=7d&build_a=1.0&build_b=1.1").text
    compared = html.split('id="builds-compared"', 1)[1]
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", compared)
    assert ("Sessions", "2", "2") in cells
    assert ("Players", "2", "1") in cells
    assert ("Error signatures", "2", "2") in cells
    runs = compared.split('id="runs-compared"', 1)[1].split("</table>", 1)[0]
    # 1 of 2 then 1 of 1: +50 points, too few to tell (the p-value shown, unmarked)
    assert re.search(r"<td>Run</td><td>50% of 2</td><td>100% of 1</td><td>\+50 pts</td>"
                     r"<td>0\.\d{3}</td>", unescape(runs)), runs  # fmt: skip
    new = compared.split('id="errors-new"', 1)[1].split("</table>", 1)[0]
    assert "sig-new" in new and "sig-old" not in new and "sig-gone" not in new
    resolved = compared.split('id="errors-resolved"', 1)[1].split("</table>", 1)[0]
    assert "sig-gone" in resolved and "sig-old" not in resolved
    changed = compared.split('id="errors-changed"', 1)[1].split("</table>", 1)[0]
    assert "sig-old" in changed and "50% of" not in changed


def test_game_page_draws_dau_over_mau(env: Env, owner: Client) -> None:
    """DAU / MAU of 1–3 April: a plays on 1 and 2 April, b on 2 April, c on 10 March (in
    each day's 30 days). Per day 1/2, 2/3, 0/3; over the period (1 + 2) / (2 + 3 + 3)."""

    def played(player: str, day: str) -> dict[str, Any]:
        return {"build_version": "1.0", "session_id": f"6f1c2d3e-0000-4000-8000-{player * 12}",
                "player_hash": player * 32, "ts": f"{day}T12:00:00Z", "type": "session",
                "name": "Session:Start"}  # fmt: skip

    events = [played("a", "2024-04-01"), played("a", "2024-04-02"), played("b", "2024-04-02"),
              played("c", "2024-03-10")]  # fmt: skip
    sent = env.client.post(
        "/api/v1/events", json={"events": events}, headers={"X-Write-Key": env.write_key}
    )
    assert sent.status_code == 200 and sent.json()["rejected"] == 0, sent.text
    html = owner.get("/p/default/game?period=custom&from=2024-04-01&to=2024-04-03").text
    assert stat(html, "Players") == "2" and stat(html, "Stickiness") == "37.50%"
    chart = html.split('id="stickiness"', 1)[1].split("</section>", 1)[0]
    assert 'data-points="3"' in chart
    assert re.findall(r"<title>[^<]*: (\d+) DAU as % of MAU<", chart) == ["50", "67", "0"]


def test_a_funnel_compared_between_two_app_versions(env: Env, owner: Client) -> None:
    """20 people start signing up on 2.0 and 15 finish; 20 on 2.1 and 5 finish: a
    significant drop, marked on the step."""
    batch = []
    for n in range(40):
        version, finishes = ("2.0", n < 15) if n < 20 else ("2.1", n < 25)
        for i, name in enumerate(["Signup Started", *(["Signup Finished"] if finishes else [])]):
            batch.append({"type": "track", "userId": f"u{n}", "event": name,
                          "timestamp": ago(minutes=30 - i),
                          "context": {"app": {"version": version}}})  # fmt: skip
    assert env.client.post("/v1/batch", json={"batch": batch, "writeKey": env.write_key}).json()
    base = "/p/default/product?period=7d&step=Signup+Started&step=Signup+Finished&window=1h"
    assert 'name="build_a"' in owner.get(base).text
    html = unescape(owner.get(f"{base}&build_a=2.0&build_b=2.1").text)
    table = html.split('id="funnel-compared"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="([^"]*)"><td>([^<]*)</td>\s*<td>([^<]*)</td><td>([^<]*)</td>'
                      r"<td>([^<]*)</td><td>([^<]*)</td>", table)  # fmt: skip
    # 2.0's 15 of 20 and 2.1's 5 of 20: pooled 50%, z = 0.5 / 0.158 = 3.16, p = 0.0016
    assert rows == [
        ("", "Signup Started", "20", "20", "", ""),
        ("significant neg", "Signup Finished", "15 (75%)", "5 (25%)", "−50 pts", "0.002 ✱"),
    ]


def test_a_funnel_says_how_long_and_who_dropped(site: Env, owner: Client) -> None:
    base = "/p/default/product?period=7d&step=/&step=Signed+Up&step=Order+Completed&window=1d"
    html = owner.get(base).text
    # u1: / at -2h00, Signed Up -1h58, Order Completed -1h40: 20 minutes; u3 never signed up,
    # u2 signed up but never ordered
    assert "each person's quickest): <strong>20m 00s</strong>" in unescape(html)
    listed = owner.get(href(html, "1 dropped")).text  # the first: before Signed Up
    assert "dropped=0" in href(html, "1 dropped")
    assert '<a href="/p/default/profiles/u3">u3</a>' in listed
    assert '<a href="/p/default/profiles/u2">u2</a>' not in listed


def test_any_event_breaks_down_by_any_property(site: Env, owner: Client) -> None:
    send(site, [{"type": "track", "userId": f"b{i}", "event": "Order Completed", "messageId": f"b{i}",
                 "properties": {"plan": plan}, "timestamp": ago(minutes=10)}
                for i, plan in enumerate(["pro", "pro", "free"])])  # fmt: skip
    html = owner.get(
        "/p/default/?period=7d&breakdown_event=Order+Completed&breakdown_property=plan"
    ).text
    part = html.split('id="breakdown"', 1)[1]
    rows = re.findall(r'<span class="label">(?:<a [^>]*>)?([^<]*)(?:</a>)?</span>'
                      r'<span class="value">([^<]*)</span>', part)  # fmt: skip
    # the site's own Order Completed has no plan: (no plan)
    assert rows == [("pro", "2"), ("free", "1"), ("(no plan)", "1")]
    assert "f=props:plan%3D%3Dpro" in href(part, "pro")


def test_a_funnel_and_retention_saved_as_a_view(site: Env, owner: Client, viewer: Client) -> None:
    page = owner.get("/p/default/product?period=7d&step=/pricing&step=Signed+Up&window=2h").text
    form = {"csrf": csrf_of(page), "name": "Sign-up", "step": ["/pricing", "Signed Up"],
            "window": "2h", "mode": "loose", "start": "", "return": "Signed Up",
            "retention_period": "day"}  # fmt: skip
    saved = owner.post("/p/default/product/views", data=form)
    assert saved.status_code == 303
    target = saved.headers["location"]
    assert "step=%2Fpricing&step=Signed+Up" in target and "window=2h" in target
    assert "return=Signed+Up" in target and "retention_period=day" in target
    html = owner.get("/p/default/product").text
    assert f'<a href="{target.replace("&", "&amp;")}">Sign-up</a>' in html
    shown = owner.get(target).text
    assert "<strong>2. Signed Up</strong> <span>1 people" in shown
    assert viewer.post("/p/default/product/views", data={**form, "csrf": csrf_of(
        viewer.get("/p/default/product").text)}).status_code == 403  # fmt: skip
    bad = owner.post("/p/default/product/views", data={**form, "step": ["/pricing"]})
    assert bad.status_code == 400 and "2 to 8 steps" in bad.text
    gone = owner.post(
        "/p/default/product/views/delete", data={"csrf": form["csrf"], "name": "Sign-up"}
    )
    assert gone.status_code == 303
    assert "Sign-up</a>" not in owner.get("/p/default/product").text


@pytest.mark.parametrize(
    "chosen",
    ["visit:source==Google", "page!=/pricing", "props:plan==pro", "entry_page==/",
     "props:signature==sig-null", "build==1.0"],
)  # fmt: skip
def test_every_page_takes_every_kind_of_filter(site: Env, owner: Client, chosen: str) -> None:
    for page_path in ("/", "/web", "/game", "/product?step=/&step=Signed+Up", "/profiles"):
        joiner = "&" if "?" in page_path else "?"
        response = owner.get(f"/p/default{page_path}{joiner}period=7d&f={quote(chosen)}")
        assert response.status_code == 200, (page_path, chosen, response.text[:300])
