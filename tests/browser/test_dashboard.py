"""The dashboard in a real browser: log in, read the charts, make a key, watch the live
stream, build a funnel."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.browser.conftest import Site
from tests.integration.server import create_key


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def test_pages_need_a_login(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/p/default/web")
    assert page.url.startswith(f"{site.url}/login?next=")
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", "wrong password!")
    page.click("button[type=submit]")
    assert page.locator(".problem").inner_text() == "Wrong email or password."


def test_log_in_and_see_the_overview_charts(page: Any, site: Site) -> None:
    site.send(
        "/v1/batch",
        {"batch": [{"type": "track", "userId": f"u{i % 4}", "event": "Level Up",
                    "messageId": f"lv{i}", "timestamp": ago(days=i % 5, minutes=i)}
                   for i in range(20)]},
    )  # fmt: skip
    site.log_in(page)
    chart = page.locator("svg.chart.timeseries")
    assert chart.get_attribute("data-points") == "30"
    assert chart.locator("circle.dot.series0").count() == 30
    assert int(page.locator("#total-events").inner_text().replace(",", "")) >= 20
    assert page.locator(".bars li", has_text="Level Up").count() == 1
    # The live counter refreshes itself from /live-counter
    site.send("/v1/track", {"userId": "u9", "event": "Ping", "messageId": "ping-1"})
    before = page.locator("#live-events").inner_text()
    page.wait_for_function(
        "b => document.getElementById('live-events').textContent !== b", arg=before, timeout=15000
    )


def test_a_new_key_is_shown_once(page: Any, site: Site) -> None:
    site.log_in(page)
    page.click("nav.tabs >> text=Settings")
    page.select_option("select[name=kind]", "read")
    page.fill("input[name=label]", "browser-test")
    page.click("text=Create key")
    raw = page.locator("#new-key").inner_text()
    assert re.fullmatch(r"rr_[\w-]{20,}", raw)
    page.goto(f"{site.url}/p/default/settings")
    assert page.locator("#new-key").count() == 0
    assert raw not in page.content()
    assert page.locator("tr", has_text="browser-test").count() == 1


def test_a_sent_event_appears_in_the_live_stream(page: Any, site: Site) -> None:
    site.log_in(page)
    page.goto(f"{site.url}/p/default/live")
    page.wait_for_selector("#live-state.on")
    site.send(
        "/v1/track", {"userId": "stream-user", "event": "Checkout Started", "messageId": "live-1"}
    )
    row = page.locator("#stream tbody tr", has_text="Checkout Started")
    row.wait_for(timeout=10000)
    assert row.get_attribute("data-outcome") == "accepted"
    assert "stream-user" in row.inner_text()
    site.send(
        "/v1/batch", {"batch": [{"type": "track", "userId": "stream-user", "messageId": "live-2"}]}
    )
    refused = page.locator("#stream tbody tr[data-outcome=rejected]")
    refused.wait_for(timeout=10000)
    assert "event" in refused.inner_text()


def test_build_a_funnel(page: Any, site: Site) -> None:
    events = []
    for i in range(6):
        steps = ["Viewed", "Added", "Bought"][: 1 + i % 3]
        for k, name in enumerate(steps):
            events.append({"type": "track", "userId": f"f{i}", "event": name,
                           "messageId": f"fn{i}-{k}", "timestamp": ago(hours=3, minutes=-k)})  # fmt: skip
    site.send("/v1/batch", {"batch": events})
    site.log_in(page)
    page.click("nav.tabs >> text=Product")
    inputs = page.locator("#funnel-builder input[name=step]")
    for k, name in enumerate(["Viewed", "Added", "Bought"]):
        inputs.nth(k).fill(name)
    page.click("text=Show funnel")
    steps = page.locator("ol.funnel li")
    assert steps.count() == 3
    texts = [steps.nth(k).inner_text() for k in range(3)]
    assert "6 people" in texts[0] and "4 people" in texts[1] and "2 people" in texts[2]
    assert "33.33% of the first step" in texts[2]
    width = page.locator(".funnel-bar").nth(2).evaluate("e => e.style.width")
    assert width == "33.3%"


def test_click_a_page_to_filter_every_panel(page: Any, site: Site) -> None:
    site.send("/v1/batch", {"batch": [
        {"type": "page", "anonymousId": f"w{i}", "messageId": f"wp{i}", "timestamp": ago(minutes=30 + i),
         "context": {"ip": f"203.0.113.{i}", "page": {"url": f"https://shop.test/{'docs' if i % 3 else 'blog'}"}}}
        for i in range(9)
    ]})  # fmt: skip
    site.log_in(page)
    page.goto(f"{site.url}/p/default/web?period=7d")
    page.locator(".bars", has_text="Top pages").get_by_role("link", name="/blog").click()
    page.wait_for_url(re.compile(r"f=page%3D%3D%2Fblog"))
    assert page.locator("nav.filters .chip").inner_text().startswith("Page is /blog")
    assert page.locator(".stat", has_text="Pageviews").locator(".value").inner_text() == "3"
    page.locator("nav.filters .chip a.remove").click()
    page.wait_for_url(re.compile(r"/web\?period=7d$"))
    assert page.locator("nav.filters").count() == 0


PHONE = {"width": 375, "height": 812}


def test_every_page_fits_a_phone(browser: Any, site: Site, artifacts: Any) -> None:
    """At 375 px wide nothing scrolls sideways, on any page (screenshots of each page at
    phone and desktop widths in tests/artifacts/screenshots)."""
    long_path = "/" + "a-very-long-path-segment-" * 6
    site.send("/v1/batch", {"batch": [
        {"type": "page", "anonymousId": f"ph{i}", "messageId": f"ph{i}", "timestamp": ago(hours=i),
         "context": {"ip": f"198.51.100.{i}", "page": {"url": f"https://shop.test{long_path}{i}"}}}
        for i in range(30)
    ]})  # fmt: skip
    context = browser.new_context(viewport=PHONE)
    try:
        phone = context.new_page()
        site.log_in(phone)
        pages = ("", "web", "web?compare=previous&f=page%3D%3D%2Fdocs", "game", "product",
                 "events", "profiles", "live", "settings")  # fmt: skip
        for name in pages:
            phone.goto(f"{site.url}/p/default/{name}")
            shot = re.sub(r"[^a-z0-9]+", "-", name) or "overview"
            phone.screenshot(path=str(artifacts / f"phone-{shot}.png"), full_page=True)
            width = phone.evaluate("document.documentElement.scrollWidth")
            wide = phone.evaluate(
                "[...document.querySelectorAll('body *')].filter(e => "
                "e.getBoundingClientRect().right > innerWidth + 0.5).slice(0, 5)"
                ".map(e => e.tagName + '.' + e.className)"
            )
            assert width <= PHONE["width"], (name, width, wide)
    finally:
        context.close()
    desktop = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        wide_page = desktop.new_page()
        site.log_in(wide_page)
        for name in pages:
            wide_page.goto(f"{site.url}/p/default/{name}")
            shot = re.sub(r"[^a-z0-9]+", "-", name) or "overview"
            wide_page.screenshot(path=str(artifacts / f"desktop-{shot}.png"), full_page=True)
    finally:
        desktop.close()


def test_a_range_of_days_a_comparison_and_a_shared_link(
    browser: Any, page: Any, site: Site
) -> None:
    """Pick yesterday and today in the date fields; compare with the period before; make a
    shared link in the settings and open it with no login: the same numbers, no settings."""
    site.send("/v1/batch", {"batch": [
        {"type": "track", "userId": f"rc{i}", "event": "Range Check", "messageId": f"rc{i}",
         "timestamp": ago(hours=1 + 30 * (i % 2))}
        for i in range(6)
    ]})  # fmt: skip
    site.log_in(page)
    today = datetime.now(UTC).date()
    first = (today - timedelta(days=1)).isoformat()
    page.goto(f"{site.url}/p/default/?period=7d")
    page.fill("form.range input[name=from]", first)
    page.fill("form.range input[name=to]", today.isoformat())
    page.click("form.range button")
    page.wait_for_url(re.compile(rf"period=custom&from={first}&to={today.isoformat()}"))
    assert page.locator("form.range button").get_attribute("aria-current") == "true"
    page.get_by_role("link", name="previous period").click()
    page.wait_for_url(re.compile(r"compare=previous"))
    assert page.locator(".stat .change").count() == 4  # events, users, visitors, sessions
    events_here = page.locator("#total-events").inner_text()

    page.goto(f"{site.url}/p/default/settings")
    page.fill("#shares input[name=label]", "board")
    page.click("#shares button[type=submit]")
    address = page.locator("#shares .new-key code").inner_text()
    assert "/s/" in address
    stranger = browser.new_context()
    try:
        shared = stranger.new_page()
        shared.goto(address + f"?period=custom&from={first}&to={today.isoformat()}")
        assert "read-only shared view" in shared.locator("header").inner_text()
        assert shared.locator("#total-events").inner_text() == events_here
        assert shared.locator("nav.tabs a", has_text="Settings").count() == 0
        refused = shared.goto(address.rstrip("/") + "/settings")
        assert refused is not None and refused.status == 404
    finally:
        stranger.close()


def test_goals_by_source_match_sql_and_a_panel_downloads_as_it_shows(page: Any, site: Site) -> None:
    """A goal set in the configuration document; its conversions by the visit's source on
    the web page equal a SQL query written here; the Sources panel's CSV holds the rows the
    panel shows; a click on a source filters the totals to what the Stats API says."""
    referrers = ["https://www.google.com/", "https://www.google.com/", "https://www.bing.com/",
                 "https://www.bing.com/", None, None]  # fmt: skip
    converts = {0, 2, 5}
    batch: list[dict[str, Any]] = []
    for i, referrer in enumerate(referrers):
        context: dict[str, Any] = {"ip": f"198.18.7.{i}", "page": {"url": "https://shop.test/"}}
        if referrer:
            context["page"]["referrer"] = referrer
        batch.append({"type": "page", "anonymousId": f"gs{i}", "messageId": f"gs{i}",
                      "timestamp": ago(minutes=20), "context": context})  # fmt: skip
        if i in converts:
            batch.append({"type": "track", "anonymousId": f"gs{i}", "event": "Signed Up",
                          "messageId": f"gs{i}-s", "timestamp": ago(minutes=18),
                          "context": {"ip": f"198.18.7.{i}"}})  # fmt: skip
    site.send("/v1/batch", {"batch": batch})
    site.log_in(page)
    page.goto(f"{site.url}/p/default/settings")
    page.fill("#configuration textarea", "goals:\n  - {name: Signed up, event: Signed Up}\n")
    page.click("#configuration button[type=submit]")
    page.goto(f"{site.url}/p/default/web")
    page.locator(".goals").get_by_role("link", name="Signed up").click()
    page.wait_for_url(re.compile(r"goal=Signed"))
    by_source = page.locator(".attributed table").first.locator("tbody tr")
    shown = [tuple(c.strip() for c in r.split("\t")) for r in by_source.all_inner_texts()]

    read_key = create_key(site.server.data, "read")
    # a visit: a visitor's events with no gap over 30 minutes; its source is its first
    # event's; a source converts a visitor when one of its visits holds the goal's event
    sql = """
        WITH gaps AS (
          SELECT visitor, timestamp, log_offset, source, event,
            CASE WHEN timestamp - lag(timestamp) OVER w <= INTERVAL 30 MINUTE THEN 0 ELSE 1 END
              AS starts
          FROM events WHERE visitor IS NOT NULL AND NOT coalesce(bot, false)
            AND timestamp >= current_date - INTERVAL 29 DAY
          WINDOW w AS (PARTITION BY visitor ORDER BY timestamp, log_offset)),
        numbered AS (
          SELECT *, sum(starts) OVER (PARTITION BY visitor ORDER BY timestamp, log_offset)
            AS visit FROM gaps),
        visits AS (
          SELECT visitor, visit, first(source ORDER BY timestamp, log_offset) AS source,
            bool_or(event = 'Signed Up') AS converted
          FROM numbered GROUP BY visitor, visit)
        SELECT source, count(DISTINCT visitor) FILTER (WHERE converted) AS converted,
          count(DISTINCT visitor) AS visitors
        FROM visits GROUP BY source HAVING converted > 0
        ORDER BY converted DESC, source NULLS LAST"""
    answer = httpx.post(f"{site.url}/api/v1/sql", json={"sql": sql},
                        headers={"Authorization": f"Bearer {read_key}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text

    def percent(part: int, whole: int) -> str:
        rate = round(100.0 * part / whole, 2)
        return f"{rate:,.2f}%" if not rate.is_integer() else f"{int(rate)}%"

    expected = [(s or "Direct / None", str(c), percent(c, v)) for s, c, v in answer.json()["rows"]]
    assert ("Google", "1", "50%") in expected and ("Bing", "1", "50%") in expected
    assert sorted(shown) == sorted(expected)

    sources = page.locator(".bars", has_text="Sources")
    panel = [
        (r.locator(".label").inner_text(), r.locator(".value").inner_text().replace(",", ""))
        for r in sources.locator("li").all()
    ]
    with page.expect_download() as download:
        sources.locator("a.csv").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["visit:source", "visitors"]
    assert [(r[0] or "Direct / None", r[1]) for r in rows[1:]] == panel

    sources.get_by_role("link", name="Google").click()
    page.wait_for_url(re.compile(r"f=visit:source%3D%3DGoogle"))
    stats = httpx.post(
        f"{site.url}/api/v1/query",
        json={"metrics": ["visitors", "pageviews"], "date_range": "30d",
              "filters": [["is", "visit:source", ["Google"]]]},
        headers={"Authorization": f"Bearer {read_key}"}, timeout=30,
    )  # fmt: skip
    assert stats.status_code == 200, stats.text
    visitors, pageviews = stats.json()["results"][0]["metrics"]
    assert visitors >= 2
    assert page.locator(".stat", has_text="Visitors").locator(".value").inner_text() == str(
        visitors
    )
    assert page.locator(".stat", has_text="Pageviews").locator(".value").inner_text() == str(
        pageviews
    )
