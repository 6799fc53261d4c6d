"""Segment's own libraries, pointed at Roost by their host setting alone: the Python library
from PyPI and the Node library from the npm registry, each sending track, identify, page,
group and alias (batched, as they do), verified by query."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import Server, create_key
from tests.integration.services import missing

NODE_SCRIPT = """
const { Analytics } = require("@segment/analytics-node");
const analytics = new Analytics({ writeKey: process.env.KEY, host: process.env.HOST, flushAt: 3 });
analytics.on("error", (err) => { console.error("error", err); process.exitCode = 1; });
analytics.identify({ userId: "node-user", traits: { plan: "pro" } });
analytics.track({ userId: "node-user", event: "Node Order", properties: { revenue: 12.5 } });
analytics.page({ userId: "node-user", name: "Pricing", properties: { path: "/pricing" } });
analytics.group({ userId: "node-user", groupId: "node-co", traits: { name: "Node Co" } });
analytics.alias({ userId: "node-user", previousId: "node-anon" });
analytics.screen({ anonymousId: "node-anon", name: "Home" });
analytics.closeAndFlush({ timeout: 10000 }).then(() => console.log("flushed"));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("segment-libs") / "data").start()
    try:
        yield running
    finally:
        running.stop()


def rows(server: Server, sql: str) -> list[list[Any]]:
    read = create_key(server.data, "read")
    answer = httpx.post(f"{server.url}/api/v1/sql", json={"sql": sql},
                        headers={"Authorization": f"Bearer {read}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def test_segment_python_library(server: Server) -> None:
    from segment.analytics import Client

    errors: list[Any] = []
    client = Client(create_key(server.data, "write"), host=server.url, gzip=True,
                    on_error=lambda error, items: errors.append(error))  # fmt: skip
    client.identify("py-user", {"plan": "pro"})
    client.track("py-user", "Py Order", {"revenue": 42.5})
    client.page("py-user", "Docs", "Install", {"path": "/docs/install"})
    client.group("py-user", "py-co", {"name": "Py Co"})
    client.alias("py-anon", "py-user")
    client.screen("py-user", name="Settings")
    client.flush()
    client.join()
    assert errors == []
    found = rows(server, "SELECT type, event, properties->>'revenue' FROM events "
                         "WHERE user_id = 'py-user' ORDER BY type")  # fmt: skip
    assert [r[0] for r in found] == ["alias", "group", "identify", "page", "screen", "track"]
    assert ["track", "Py Order", "42.5"] in found


def test_segment_node_library(server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("Node.js and npm", "apt-get install nodejs npm")
    cache = Path(
        os.environ.get("ROOST_NODE_CACHE", Path.home() / ".cache" / "roost-tests" / "node")
    )
    if not (cache / "node_modules" / "@segment" / "analytics-node").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(npm), "install", "--silent", "--prefix", str(cache),
                        "@segment/analytics-node@3"], check=True, timeout=300)  # fmt: skip
    script = cache / "send.js"
    script.write_text(NODE_SCRIPT)
    env = {**os.environ, "KEY": create_key(server.data, "write"), "HOST": server.url,
           "NODE_PATH": str(cache / "node_modules")}  # fmt: skip
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, env=env,
                            cwd=cache, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "flushed" in result.stdout
    found = rows(server, "SELECT type, event, traits FROM events "
                         "WHERE user_id = 'node-user' OR anonymous_id = 'node-anon' ORDER BY type")  # fmt: skip
    assert [r[0] for r in found] == ["alias", "group", "identify", "page", "screen", "track"]
    identify = next(r for r in found if r[0] == "identify")
    assert json.loads(identify[2]) == {"plan": "pro"}
