"""The browser clients Roost serves, in headless Chromium on a page of another origin,
checked by querying Roost afterwards: the web tracker (pageviews, SPA navigation, a custom
event, an outbound click, opt-out) and the game SDK (batches, a Roost answering 503 for a
while, a 400 dropped, Session:End on leaving, the ES module)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.browser.conftest import Pages, Site
from tests.integration.server import create_key
from tests.integration.services import missing


def sql(site: Site, query: str) -> list[list[Any]]:
    key = getattr(site, "_read", None) or create_key(site.server.data, "read")
    site._read = key  # type: ignore[attr-defined]
    answer = httpx.post(f"{site.url}/api/v1/sql", json={"sql": query},
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def wait_rows(site: Site, query: str, n: int, timeout: float = 15) -> list[list[Any]]:
    deadline = time.monotonic() + timeout
    found = sql(site, query)
    while len(found) < n and time.monotonic() < deadline:
        time.sleep(0.1)
        found = sql(site, query)
    return found


def test_tracker_records_pageviews_spa_navigation_events_and_outbound_clicks(
    page: Any, site: Site, pages: Pages
) -> None:
    pages.html["/shop/"] = f"""<!doctype html><title>Shop</title>
<script defer data-site="default" data-key="{site.write_key}" data-outbound="true"
        data-downloads="true" src="{site.url}/js/roost.js"></script>
<a id="pdf" href="/files/report.pdf">Report</a>
<a id="out" href="http://127.0.0.1:9/partner">Partner</a>
<script>document.getElementById("pdf").addEventListener("click", e => e.preventDefault());</script>"""
    page.goto(f"{pages.url}/shop/?ref=test")
    page.wait_for_function("typeof window.roost === 'function'")
    page.evaluate("history.pushState({}, '', '/shop/cart')")
    page.evaluate("location.hash = 'step2'")
    page.evaluate("roost('event', 'Signup', {props: {plan: 'pro', seats: 3}})")
    page.click("#pdf")  # the page stays (the test page prevents the navigation)
    # Nothing is kept in the browser: no cookie, no storage
    assert page.context.cookies() == []
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    page.click("#out", no_wait_after=True)
    views = wait_rows(site, "SELECT url FROM events WHERE type = 'page' AND host = '127.0.0.1' "
                            "ORDER BY received_at", 3)  # fmt: skip
    assert [v[0].removeprefix(pages.url) for v in views] == [
        "/shop/?ref=test", "/shop/cart", "/shop/cart#step2"]  # fmt: skip
    signup = wait_rows(site, "SELECT properties->>'plan', properties->>'seats', path FROM events "
                             "WHERE event = 'Signup'", 1)  # fmt: skip
    assert signup == [["pro", "3", "/shop/cart"]]
    outbound = wait_rows(site, "SELECT properties->>'url' FROM events "
                               "WHERE event = 'Outbound Link: Click'", 1)  # fmt: skip
    assert outbound == [["http://127.0.0.1:9/partner"]]
    download = wait_rows(
        site, "SELECT properties->>'url' FROM events WHERE event = 'File Download'", 1
    )
    assert download == [[f"{pages.url}/files/report.pdf"]]


def test_tracker_honours_the_opt_out_flag(page: Any, site: Site, pages: Pages) -> None:
    pages.html["/private/"] = f"""<!doctype html><script>window.roostOptOut = true;</script>
<script defer data-site="default" data-key="{site.write_key}" src="{site.url}/js/roost.js"></script>"""
    page.goto(f"{pages.url}/private/")
    page.wait_for_function("typeof window.roost === 'function'")
    page.evaluate("roost('event', 'Private Thing')")
    page.evaluate("window.roostOptOut = false; roost('event', 'After Opting In')")
    assert wait_rows(site, "SELECT event FROM events WHERE event = 'After Opting In'", 1)
    assert sql(site, "SELECT count(*) FROM events WHERE path = '/private/' AND type = 'page'") == [
        [0]
    ]
    assert sql(site, "SELECT count(*) FROM events WHERE event = 'Private Thing'") == [[0]]


def game_page(site: Site, pages: Pages, path: str, build: str) -> str:
    pages.html[path] = f"""<!doctype html><title>Game</title>
<script src="{site.url}/js/roost-game.js"></script>
<script>RoostGame.initialize({{apiKey: "{site.write_key}", buildVersion: "{build}"}});</script>"""
    return f"{pages.url}{path}"


def test_game_sdk_batches_and_survives_a_roost_answering_503(
    page: Any, site: Site, pages: Pages
) -> None:
    answered: list[int] = []

    def unavailable(route: Any) -> None:
        answered.append(503)
        route.fulfill(status=503, content_type="application/json", body='{"error": "down"}')

    page.goto(game_page(site, pages, "/game503.html", "5.0.3"))
    page.route(f"{site.url}/api/v1/events", unavailable)
    page.evaluate("""() => {
        RoostGame.trackProgression("Start:Level1", {dim01: "forest"});
        for (let i = 0; i < 40; i++) RoostGame.trackResource("Source:Gold", 5);
        RoostGame.trackProgression("Complete:Level1", {value: 120});
    }""")  # 43 events with Session:Start: a batch of 30 goes at once, refused
    deadline = time.monotonic() + 10
    while len(answered) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(200)  # backoff 1 s, then 2 s
    assert len(answered) >= 2
    assert sql(site, "SELECT count(*) FROM events WHERE build = '5.0.3'") == [[0]]
    page.unroute(f"{site.url}/api/v1/events")
    page.evaluate("RoostGame.flush()")
    rows = wait_rows(
        site, "SELECT name FROM (SELECT event AS name FROM events WHERE build = '5.0.3')", 43, 20
    )
    assert len(rows) == 43  # every event once: the retried batch and the rest
    names = sorted({r[0] for r in rows})
    assert names == ["Complete:Level1", "Session:Start", "Source:Gold", "Start:Level1"]


def test_game_sdk_drops_a_batch_refused_with_400(page: Any, site: Site, pages: Pages) -> None:
    refused: list[str] = []

    def bad_request(route: Any) -> None:
        refused.append(route.request.post_data or "")
        route.fulfill(status=400, content_type="application/json", body='{"error": "bad"}')

    page.goto(game_page(site, pages, "/game400.html", "4.0.0"))
    page.route(f"{site.url}/api/v1/events", bad_request)
    page.evaluate("RoostGame.trackDesign('Tutorial:Skipped'); RoostGame.flush()")
    page.wait_for_timeout(300)
    assert len(refused) == 1
    page.unroute(f"{site.url}/api/v1/events")
    page.evaluate("RoostGame.trackDesign('Menu:Opened'); RoostGame.flush()")
    assert wait_rows(site, "SELECT event FROM events WHERE build = '4.0.0'", 1)
    page.wait_for_timeout(2500)  # a retry of the refused batch would have come by now
    found = sql(site, "SELECT event FROM events WHERE build = '4.0.0'")
    assert found == [["Menu:Opened"]]


def test_game_sdk_sends_session_end_when_the_page_closes(
    page: Any, site: Site, pages: Pages
) -> None:
    page.goto(game_page(site, pages, "/gameclose.html", "3.0.0"))
    page.evaluate(
        "RoostGame.identifyUser('player@example.com'); RoostGame.trackDesign('Boss:Seen')"
    )
    page.close(run_before_unload=True)
    rows = wait_rows(site, "SELECT event, user_id, anonymous_id FROM events WHERE build = '3.0.0' "
                           "ORDER BY timestamp", 3)  # fmt: skip
    assert [r[0] for r in rows] == ["Session:Start", "Boss:Seen", "Session:End"]
    assert "player@example.com" not in str(rows)  # only its hash travels


def test_game_sdk_as_an_es_module_and_opt_out(page: Any, site: Site, pages: Pages) -> None:
    pages.html["/module.html"] = f"""<!doctype html>
<script type="module">
import RoostGame from "{site.url}/js/roost-game.mjs";
RoostGame.initialize({{apiKey: "{site.write_key}", buildVersion: "2.0.0"}});
window.G = RoostGame;
</script>"""
    page.goto(f"{pages.url}/module.html")
    page.wait_for_function("window.G !== undefined")
    page.evaluate("G.setOptOut(true); G.trackDesign('Hidden'); G.flush()")
    page.evaluate("G.setOptOut(false); G.trackError('Crash', {signature: 'sig-9'}); G.flush()")
    rows = wait_rows(site, "SELECT event, properties->>'signature' FROM events "
                           "WHERE build = '2.0.0' ORDER BY timestamp", 2)  # fmt: skip
    assert rows == [["Session:Start", None], ["Crash", "sig-9"]]
    assert page.evaluate("G.trackDesign(undefined, 'not an object')") is None  # never throws


def analytics_js() -> str:
    """Segment's analytics.js (the UMD build of @segment/analytics-next from npm)."""
    npm = shutil.which("npm")
    if npm is None:
        missing("npm", "apt-get install npm (the analytics.js test installs it from npm)")
    cache = Path(
        os.environ.get("ROOST_NODE_CACHE", Path.home() / ".cache" / "roost-tests" / "node")
    )
    built = cache / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd" / "index.js"
    if not built.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(npm), "install", "--silent", "--prefix", str(cache),
                        "@segment/analytics-next@1"], check=True, timeout=300)  # fmt: skip
    return built.read_text()


def test_segments_analytics_js_by_its_host_setting_alone(
    page: Any, site: Site, pages: Pages
) -> None:
    pages.html["/ajs.js"] = analytics_js()
    pages.html["/ajs.html"] = f"""<!doctype html><title>analytics.js</title>
<script src="/ajs.js"></script>
<script>
AnalyticsNext.AnalyticsBrowser.load({{writeKey: "{site.write_key}", cdnURL: "{site.url}"}})
  .then(([analytics]) => {{ window.ajs = analytics; }});
</script>"""
    page.goto(f"{pages.url}/ajs.html")
    page.wait_for_function("window.ajs !== undefined", timeout=15000)
    page.evaluate("""async () => {
        await ajs.identify("ajs-user", {plan: "pro"});
        await ajs.track("Ajs Order", {revenue: 9.5});
        await ajs.page("Docs", "Install");
        await ajs.group("ajs-co", {name: "Ajs Co"});
        await ajs.alias("ajs-user", "ajs-anon");
    }""")
    rows = wait_rows(site, "SELECT type, event, properties->>'revenue' FROM events "
                           "WHERE user_id = 'ajs-user' ORDER BY type", 5)  # fmt: skip
    assert [r[0] for r in rows] == ["alias", "group", "identify", "page", "track"]
    assert ["track", "Ajs Order", "9.5"] in rows


# The game document's own snippet, verbatim but for the key (its import resolves to Roost's
# module through an import map, so not even the import line changes).
DOCUMENT_SNIPPET = """import { OwlsignalClient } from '@owlsignal/web';
OwlsignalClient.Initialize({
apiKey: 'pk_live_...',
buildVersion: '1.4.0',
// endpointUrl is optional — defaults to https://owlsignal.dev/api/v1/events
});
// Then anywhere a meaningful moment happens:
OwlsignalClient.TrackProgression('Complete:Tutorial');
OwlsignalClient.TrackDesign('CTA:Clicked', { dim01: 'pricing-pro' });
OwlsignalClient.TrackResource('Source:Coins', { value: 50 });
OwlsignalClient.TrackError('NullRef', { data: { stack: 'at foo.bar:12' } });
// Optional: identify the user (still anonymous — this is just a stable hash).
OwlsignalClient.IdentifyUser('user-abc');
// Optional: respect a user opt-out flag.
OwlsignalClient.SetOptOut(true);
"""


def test_game_sdk_runs_the_documents_own_snippet(page: Any, site: Site, pages: Pages) -> None:
    snippet = DOCUMENT_SNIPPET.replace("pk_live_...", site.write_key)
    pages.html["/owlsignal.html"] = f"""<!doctype html>
<script type="importmap">{{"imports": {{"@owlsignal/web": "{site.url}/js/roost-game.mjs"}}}}</script>
<script type="module">
{snippet}
window.O = OwlsignalClient;
</script>"""
    page.goto(f"{pages.url}/owlsignal.html")
    page.wait_for_function("window.O !== undefined")
    rows = wait_rows(site, "SELECT category, event, dim1, value, properties->>'stack' FROM events "
                           "WHERE build = '1.4.0' ORDER BY timestamp, event", 5)  # fmt: skip
    assert sorted(rows, key=str) == sorted(
        [
            ["session", "Session:Start", None, None, None],
            ["progression", "Complete:Tutorial", None, None, None],
            ["design", "CTA:Clicked", "pricing-pro", None, None],
            ["resource", "Source:Coins", None, 50.0, None],
            ["error", "NullRef", None, None, "at foo.bar:12"],
        ],
        key=str,
    )  # fmt: skip  (what was tracked before opting out is sent; nothing after)
    page.evaluate("O.TrackDesign('After:OptOut'); O.flush()")
    page.wait_for_timeout(500)
    assert sql(site, "SELECT count(*) FROM events WHERE build = '1.4.0'") == [[5]]


def test_game_sdk_endpoint_url_is_the_full_events_url(page: Any, site: Site, pages: Pages) -> None:
    pages.html["/endpoint.html"] = f"""<!doctype html>
<script src="{site.url}/js/roost-game.js"></script>
<script>OwlsignalClient.Initialize({{apiKey: "{site.write_key}", buildVersion: "1.5.0",
  endpointUrl: "{site.url}/api/v1/events"}});
OwlsignalClient.TrackDesign("Shop:Opened"); OwlsignalClient.flush();</script>"""
    page.goto(f"{pages.url}/endpoint.html")
    rows = wait_rows(site, "SELECT event FROM events WHERE build = '1.5.0' ORDER BY timestamp", 2)
    assert [r[0] for r in rows] == ["Session:Start", "Shop:Opened"]
    assert page.evaluate("window.RoostGame === window.OwlsignalClient")
