"""Headless Chromium (Debian's `chromium`, driven by Playwright) against a real `roost serve`.

Without Chromium the tests skip saying what to install; in CI (ROOST_REQUIRE_SERVICES=1)
they fail instead. Screenshots go to tests/artifacts/screenshots (or $ROOST_ARTIFACTS).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.integration.server import Server, create_key, roost
from tests.integration.services import missing

PASSWORD = "correct horse battery"
OWNER = "owner@example.com"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


def chromium_path() -> str | None:
    return (
        os.environ.get("ROOST_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="session")
def artifacts() -> Path:
    root = Path(os.environ.get("ROOST_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))
    path = root / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        missing("Chromium", "apt-get install chromium (the browser tests drive it headless)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        yield launched
        launched.close()


class Site:
    """A running Roost with an owner login and a write key."""

    def __init__(self, server: Server, write_key: str) -> None:
        self.server = server
        self.url = server.url
        self.write_key = write_key

    def send(self, path: str, body: Any) -> None:
        response = httpx.post(
            f"{self.url}{path}", json=body, headers={"X-Write-Key": self.write_key}, timeout=10
        )
        assert response.status_code == 200, response.text

    def log_in(self, page: Any, email: str = OWNER) -> None:
        page.goto(f"{self.url}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.url}/p/default/")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("browser") / "data"
    server = Server(data).start()
    try:
        roost("users", "create", OWNER, "--role", "owner", "--password", PASSWORD, data=data)
        yield Site(server, create_key(data, "write"))
    finally:
        server.stop()


@pytest.fixture
def page(
    browser: Any, site: Site, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # A script's error or exception fails the test (a refused request, such as a wrong
    # password's 401, is logged as "Failed to load resource" and is not one).
    opened.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    try:
        yield opened
    finally:
        if not opened.is_closed():
            with contextlib.suppress(PlaywrightError):  # a page the test closed is closing
                opened.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert errors == [], f"the page logged errors: {errors}"


class Pages:
    """Test pages on their own loopback origin (so every call to Roost is cross-origin)."""

    def __init__(self) -> None:
        self.html: dict[str, str] = {}
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0].split("#")[0]
                body = pages.html.get(path)
                self.send_response(200 if body is not None else 404)
                kind = "text/javascript" if path.endswith(".js") else "text/html"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    served = Pages()
    yield served
    served.server.shutdown()
    served.server.server_close()
