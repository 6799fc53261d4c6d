"""Segment's own libraries, pointed at Roost by their host setting alone: the Python library
from PyPI and the Node library from the npm registry, each sending track, identify, page,
group and alias (batched, as they do), verified by query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.libraries import rows, run_node, serving
from tests.integration.server import Server, create_key

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
    yield from serving(tmp_path_factory.mktemp("segment-libs") / "data")


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


def test_segment_node_library(server: Server) -> None:
    out = run_node(server, "@segment/analytics-node", "@segment/analytics-node@3", NODE_SCRIPT)
    assert "flushed" in out
    found = rows(server, "SELECT type, event, traits FROM events "
                         "WHERE user_id = 'node-user' OR anonymous_id = 'node-anon' ORDER BY type")  # fmt: skip
    assert [r[0] for r in found] == ["alias", "group", "identify", "page", "screen", "track"]
    identify = next(r for r in found if r[0] == "identify")
    assert json.loads(identify[2]) == {"plan": "pro"}
