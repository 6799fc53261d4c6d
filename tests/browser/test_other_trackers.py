"""Other tools' browser trackers, unchanged from the npm registry, in headless Chromium on a
page of another origin, sending to Roost by their host setting alone: Plausible's
plausible-tracker, Umami's tracker script and PostHog's posthog-js; checked by SQL."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Pages, Site
from tests.browser.test_clients import sql, wait_rows
from tests.integration.services import missing

PACKAGES = {"plausible-tracker": "0.3.9", "umami": "2.10.0", "posthog-js": "1.449.2"}


def package_file(name: str, inner: str) -> str:
    """A file of a package's own tarball from the npm registry (`npm pack`: no install, so
    Umami's server and its dependencies are not fetched for its tracker script)."""
    npm = shutil.which("npm")
    if npm is None:
        missing("npm", "apt-get install npm (these tests fetch the trackers from npm)")
    cache = Path(
        os.environ.get("ROOST_NODE_CACHE", Path.home() / ".cache" / "roost-tests" / "node")
    )
    tarball = cache / f"{name}-{PACKAGES[name]}.tgz"
    if not tarball.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(npm), "pack", "--silent", f"{name}@{PACKAGES[name]}"], cwd=cache,
                       check=True, timeout=300, capture_output=True)  # fmt: skip
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"package/{inner}")
        assert member is not None, f"{name} has no {inner}"
        return io.TextIOWrapper(member, encoding="utf-8").read()


@pytest.fixture(scope="module")
def named(site: Site, browser: Any) -> Site:
    """The project's site setting, made in the dashboard's configuration form: the test
    pages' host as its domain and a website id for Umami's script."""
    context = browser.new_context()
    try:
        page = context.new_page()
        site.log_in(page)
        page.goto(f"{site.url}/p/default/settings")
        page.fill("#configuration textarea",
                  "site:\n  domains: [127.0.0.1]\n  website_id: umami-site-1\n")  # fmt: skip
        page.click("#configuration button[type=submit]")
        assert "127.0.0.1" in page.locator("#configuration textarea").input_value()
    finally:
        context.close()
    time.sleep(1.2)  # the setting is read again after key_cache_seconds
    return site


def test_plausible_tracker(page: Any, named: Site, pages: Pages) -> None:
    base = "/plausible/build/module"
    for inner in ("index.js", "lib/tracker.js", "lib/request.js"):
        pages.html[f"{base}/{inner}"] = package_file("plausible-tracker", f"build/module/{inner}")
    # its imports name no extension, as a bundler resolves them: an import map does here
    pages.html["/plausible.html"] = f"""<!doctype html><title>Plausible</title>
<script type="importmap">{{"imports": {{"{base}/lib/tracker": "{base}/lib/tracker.js",
  "{base}/lib/request": "{base}/lib/request.js"}}}}</script>
<script type="module">
import Plausible from "{base}/index.js";
const plausible = Plausible({{apiHost: "{named.url}", trackLocalhost: true}});
plausible.trackPageview();
plausible.trackEvent("Signup", {{props: {{plan: "pro"}}}});
window.done = true;
</script>"""
    page.goto(f"{pages.url}/plausible.html?utm_source=news")
    page.wait_for_function("window.done === true")
    rows = wait_rows(named, "SELECT type, event, path, utm_source, properties->>'plan', dialect "
                            "FROM events WHERE dialect = 'plausible' ORDER BY type", 2)  # fmt: skip
    assert rows == [["page", None, "/plausible.html", "news", None, "plausible"],
                    ["track", "Signup", "/plausible.html", "news", "pro", "plausible"]]  # fmt: skip
    assert sql(named, "SELECT count(*) FROM events WHERE dialect = 'plausible' "
                      "AND (visitor IS NULL OR browser IS NULL)") == [[0]]  # fmt: skip


def test_umami_tracker_script(page: Any, named: Site, pages: Pages) -> None:
    pages.html["/umami/script.js"] = package_file("umami", "src/tracker/index.js")
    pages.html["/umami.html"] = f"""<!doctype html><title>Umami page</title>
<script defer data-website-id="umami-site-1" data-host-url="{named.url}"
        src="/umami/script.js"></script>
<button id="buy" data-umami-event="Buy" data-umami-event-plan="pro">Buy</button>"""
    page.goto(f"{pages.url}/umami.html?x=1")
    page.wait_for_function("window.umami !== undefined")
    wait_rows(named, "SELECT 1 FROM events WHERE dialect = 'umami' AND type = 'page'", 1)
    page.click("#buy")
    page.evaluate("umami.track('Signup', {seats: 3})")
    rows = wait_rows(named, "SELECT type, event, url, properties->>'plan', properties->>'seats', "
                            "properties->>'title' FROM events WHERE dialect = 'umami' "
                            "ORDER BY received_at", 3)  # fmt: skip
    assert rows == [
        ["page", None, "https://127.0.0.1/umami.html?x=1", None, None, "Umami page"],
        ["track", "Buy", "https://127.0.0.1/umami.html?x=1", "pro", None, "Umami page"],
        ["track", "Signup", "https://127.0.0.1/umami.html?x=1", None, "3", "Umami page"],
    ]


def test_posthog_js(page: Any, named: Site, pages: Pages) -> None:
    pages.html["/posthog/array.full.js"] = package_file("posthog-js", "dist/array.full.js")
    pages.html["/posthog.html"] = f"""<!doctype html><title>PostHog page</title>
<script src="/posthog/array.full.js"></script>
<script>
posthog.init("{named.write_key}", {{api_host: "{named.url}", autocapture: false,
  disable_session_recording: true, persistence: "memory", request_batching: false,
  opt_out_useragent_filter: true,  // headless Chromium says it is one: PostHog's e2e switch
  loaded: () => {{ window.ready = true; }}}});
</script>"""
    page.goto(f"{pages.url}/posthog.html")
    page.wait_for_function("window.ready === true")
    anonymous = page.evaluate("posthog.get_distinct_id()")
    page.evaluate("posthog.capture('Clicked', {plan: 'pro'})")
    page.evaluate("posthog.identify('js-user', {email: 'js@example.com'})")
    page.evaluate("posthog.capture('Bought', {total: 5})")
    rows = wait_rows(named, "SELECT type, event, user_id, anonymous_id, path FROM events "
                            "WHERE dialect = 'posthog' AND anonymous_id = "
                            f"'{anonymous}' ORDER BY received_at, type", 4)  # fmt: skip
    kinds = [(r[0], r[1]) for r in rows]
    assert ("page", None) in kinds and ("track", "Clicked") in kinds
    assert ("identify", None) in kinds and ("track", "Bought") in kinds
    clicked = next(r for r in rows if r[1] == "Clicked")
    assert clicked[2] is None and clicked[4] == "/posthog.html"  # before identify: anonymous
    bought = next(r for r in rows if r[1] == "Bought")
    assert bought[2] == "js-user"
    identify = next(r for r in rows if r[0] == "identify")
    assert identify[2:4] == ["js-user", anonymous]  # the link PostHog's $identify makes
