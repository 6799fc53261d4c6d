"""RudderStack's libraries, pointed at Roost by their data plane URL alone: rudder-sdk-python
from PyPI and rudder-sdk-node from the npm registry, each sending every call it has, and
batches of large non-ASCII events — they size batches by characters (node: 450,000 before it
flushes) or by bytes up to 4 MB (python), so a batch is well over 512 KiB in bytes; node posts
gzip with `Content-Type: application/x-www-form-urlencoded`. Checked by SQL: every event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.libraries import rows, run_node, serving
from tests.integration.server import Server, create_key

LARGE = "数据" * 4000  # 8,000 characters, 24,000 bytes in UTF-8: under the 32 KiB an event may be
NODE_SCRIPT = """
const Analytics = require("@rudderstack/rudder-sdk-node");
const client = new Analytics(process.env.KEY, { dataPlaneUrl: process.env.HOST, flushAt: 100,
                                                  flushInterval: 200 });
const large = process.env.LARGE;
client.identify({ userId: "node-user", traits: { plan: "pro" } });
client.track({ userId: "node-user", event: "Node Order", properties: { revenue: 12.5 } });
client.page({ userId: "node-user", name: "Pricing", properties: { path: "/pricing" } });
client.screen({ userId: "node-user", name: "Home" });
client.group({ userId: "node-user", groupId: "node-co", traits: { name: "Node Co" } });
client.alias({ userId: "node-user", previousId: "node-anon" });
for (let i = 0; i < 60; i++) {
  client.track({ userId: "node-big", event: "Big", properties: { i, text: large } });
}
client.flush((err) => { if (err) { console.error("error", err); process.exitCode = 1; }
                        else { console.log("flushed"); } });
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("rudder-libs") / "data")


def test_rudder_python_library(server: Server) -> None:
    from rudderstack.analytics.client import Client

    errors: list[Any] = []
    client = Client(create_key(server.data, "write"), host=server.url, gzip=True,
                    upload_size=100, on_error=lambda error, items: errors.append(error))  # fmt: skip
    client.identify("py-user", {"plan": "pro"})
    client.track("py-user", "Py Order", {"revenue": 42.5})
    client.page("py-user", "Docs", "Install", {"path": "/docs/install"})
    client.screen("py-user", name="Settings")
    client.group("py-user", "py-co", {"name": "Py Co"})
    client.alias("py-anon", "py-user")
    for i in range(60):
        client.track("py-big", "Big", {"i": i, "text": LARGE})
    client.flush()
    client.join()
    assert errors == []
    found = rows(server, "SELECT type FROM events WHERE user_id = 'py-user' ORDER BY type")
    assert [r[0] for r in found] == ["alias", "group", "identify", "page", "screen", "track"]
    big = rows(server, "SELECT count(DISTINCT properties->>'i'), min(length(properties->>'text')) "
                       "FROM events WHERE user_id = 'py-big'")  # fmt: skip
    assert big == [[60, len(LARGE)]]


def test_rudder_node_library(server: Server) -> None:
    out = run_node(
        server,
        "@rudderstack/rudder-sdk-node",
        "@rudderstack/rudder-sdk-node@3",
        NODE_SCRIPT,
        LARGE=LARGE,
    )
    assert "flushed" in out
    found = rows(server, "SELECT type, traits FROM events WHERE user_id = 'node-user' "
                         "ORDER BY type")  # fmt: skip
    assert [r[0] for r in found] == ["alias", "group", "identify", "page", "screen", "track"]
    assert json.loads(next(r for r in found if r[0] == "identify")[1]) == {"plan": "pro"}
    big = rows(server, "SELECT count(DISTINCT properties->>'i'), min(length(properties->>'text')) "
                       "FROM events WHERE user_id = 'node-big'")  # fmt: skip
    assert big == [[60, len(LARGE)]]
