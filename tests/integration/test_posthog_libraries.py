"""PostHog's own libraries, pointed at Roost by their host alone: posthog-python from PyPI
and posthog-node from the npm registry, each sending every call it has (capture with
properties, $set/$set_once and groups, a pageview, identify, set, set_once, group identify,
alias), verified by query and by the profile they make."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.libraries import rows, run_node, serving
from tests.integration.server import Server, create_key

NODE_SCRIPT = """
const { PostHog } = require("posthog-node");
const client = new PostHog(process.env.KEY, { host: process.env.HOST, flushAt: 3,
                                              flushInterval: 100 });
client.on("error", (err) => { console.error("error", err); process.exitCode = 1; });
client.capture({ distinctId: "node-user", event: "Node Order", properties: { revenue: 12.5 },
                 groups: { company: "node-co" } });
client.identify({ distinctId: "node-user", properties: { plan: "pro" } });
client.groupIdentify({ groupType: "company", groupKey: "node-co", properties: { name: "Node Co" } });
client.alias({ distinctId: "node-user", alias: "node-login" });
client.capture({ distinctId: "node-user", event: "$pageview",
                 properties: { $current_url: "https://shop.test/pricing?utm_source=news" } });
client.shutdown(10000).then(() => console.log("flushed"));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("posthog-libs") / "data")


def profile(server: Server, user: str) -> dict[str, Any]:
    read = create_key(server.data, "read")
    answer = httpx.get(f"{server.url}/api/v1/profiles/{user}",
                       headers={"Authorization": f"Bearer {read}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_posthog_python_library(server: Server) -> None:
    from posthog import Posthog

    errors: list[Any] = []
    client = Posthog(create_key(server.data, "write"), host=server.url, gzip=True,
                     on_error=lambda error, items: errors.append(error))  # fmt: skip
    client.capture("Py Order", distinct_id="py-user", properties={"revenue": 42.5,
                   "$set": {"plan": "pro"}, "$set_once": {"first_seen_plan": "free"}},
                   groups={"company": "py-co"})  # fmt: skip
    client.capture("$pageview", distinct_id="py-user",
                   properties={"$current_url": "https://shop.test/docs?utm_source=news",
                               "$referrer": "https://www.google.com/"})  # fmt: skip
    client.set(distinct_id="py-user", properties={"name": "Py"})
    client.set_once(distinct_id="py-user", properties={"first_seen_plan": "ignored",
                                                       "signup": "2026"})  # fmt: skip
    client.group_identify("company", "py-co", {"name": "Py Co"})
    client.alias("py-user", "py-login")
    client.flush()
    client.shutdown()
    assert errors == []
    found = rows(server, "SELECT type, event, properties->>'revenue', url, utm_source, group_id, "
                         "dialect FROM events WHERE user_id = 'py-user' ORDER BY type, event")  # fmt: skip
    assert [r[0] for r in found] == ["identify", "identify", "identify", "page", "track"]
    assert {r[6] for r in found} == {"posthog"}
    track = next(r for r in found if r[0] == "track")
    assert track[1:3] == ["Py Order", "42.5"] and track[5] == "py-co"
    page = next(r for r in found if r[0] == "page")
    assert page[3:5] == ["https://shop.test/docs?utm_source=news", "news"]
    # the alias: distinct_id is the id in use, `alias` the one it takes on
    assert rows(server, "SELECT previous_id FROM events WHERE type = 'alias' "
                        "AND user_id = 'py-login'") == [["py-user"]]  # fmt: skip
    assert rows(server, "SELECT group_id, traits->>'name' FROM events WHERE type = 'group'") == [
        ["py-co", "Py Co"]
    ]
    # $set wins, $set_once only where nothing was set before
    traits = profile(server, "py-login")["traits"]
    assert traits == {"plan": "pro", "first_seen_plan": "free", "name": "Py", "signup": "2026"}


def test_posthog_node_library(server: Server) -> None:
    out = run_node(server, "posthog-node", "posthog-node@5", NODE_SCRIPT)
    assert "flushed" in out
    found = rows(server, "SELECT type, event, traits, group_id, utm_source FROM events "
                         "WHERE user_id IN ('node-user', 'node-login') ORDER BY type, event")  # fmt: skip
    assert [r[0] for r in found] == ["alias", "identify", "page", "track"]
    identify = next(r for r in found if r[0] == "identify")
    assert json.loads(identify[2]) == {"plan": "pro"}
    track = next(r for r in found if r[0] == "track")
    assert track[1] == "Node Order" and track[3] == "node-co"
    assert next(r for r in found if r[0] == "page")[4] == "news"
    assert rows(server, "SELECT traits->>'name' FROM events WHERE type = 'group' "
                        "AND group_id = 'node-co'") == [["Node Co"]]  # fmt: skip
