"""Fuzzing a real running Roost: generated methods, paths (every route, its parameters
filled with anything), query strings, headers (good keys, bad keys, junk) and bodies (JSON of
any shape, broken JSON, bytes, gzip) for every route of the app. Whatever comes, Roost
answers below 500, stays healthy, and stores exactly what it acknowledged.

Bounded for `make test` (ROOST_FUZZ_EXAMPLES, default 300); `make fuzz` runs it longer."""

from __future__ import annotations

import gzip
import json
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.web.app import create_app
from roost.web.ingest import PATHS
from tests.integration.server import Server, create_key

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),  # big reprs
]
EXAMPLES = int(os.environ.get("ROOST_FUZZ_EXAMPLES", "300"))


def routes() -> list[tuple[str, str]]:
    """(method, path template) of every route: Starlette's and the bare ingest paths."""
    found = [("POST", path) for path in PATHS if not path.endswith("/")]
    for route in create_app().starlette.routes:
        path = getattr(route, "path", None)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if path and method != "HEAD":
                found.append((method, path))
    return found


ROUTES = routes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    running = Server(data).start()
    keys = {kind: create_key(data, kind) for kind in ("write", "read", "admin", "delete")}
    yield {"server": running, "keys": keys, "sent": set(), "accepted": set()}
    running.stop()


text = st.text(max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
segment_fields = st.sampled_from([
    "type", "userId", "anonymousId", "event", "name", "properties", "traits", "context",
    "timestamp", "sentAt", "messageId", "batch", "events", "site_id", "url", "event_name",
    "sql", "metrics", "date_range", "steps", "since", "until", "user_id", "kind", "writeKey",
])  # fmt: skip
bodies = st.one_of(
    st.dictionaries(segment_fields, json_values, max_size=6).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b'{"batch": [', b"NaN", b'{"a": "\xff"}', b"[" * 300]),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method, template = draw(st.sampled_from(ROUTES))
    path = re.sub(r"\{[^}]+\}", lambda _: draw(st.text(min_size=1, max_size=12).filter(
        lambda t: "/" not in t and "?" not in t and "#" not in t)), template)  # fmt: skip
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", ""]))}
    auth = draw(st.sampled_from(["write", "read", "admin", "delete", "junk", None]))
    body = draw(bodies)
    if draw(st.booleans()) and body:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    query = draw(st.dictionaries(st.sampled_from(["format", "since", "until", "consistent",
                                                  "limit", "next", "period", "date_range"]),
                                 st.text(max_size=20), max_size=3))  # fmt: skip
    return {"method": method, "path": path, "headers": headers, "auth": auth, "body": body,
            "query": query}  # fmt: skip


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("ROOST_FUZZ_RANDOM") != "1",
)  # fmt: skip
@given(request=requests())
def test_no_request_makes_roost_answer_5xx(server: dict[str, Any], request: dict[str, Any]) -> None:
    running: Server = server["server"]
    headers = dict(request["headers"])
    if request["auth"] == "junk":
        headers["Authorization"] = "Bearer junk"
    elif request["auth"] is not None:
        headers["Authorization"] = f"Bearer {server['keys'][request['auth']]}"
    if request["method"] == "GET" and request["path"].endswith("/stream"):
        return  # a stream never ends: the stream tests bound those
    try:
        answer = httpx.request(
            request["method"], f"{running.url}{request['path']}", params=request["query"],
            content=request["body"] if request["method"] != "GET" else None,
            headers=headers, timeout=30,
        )  # fmt: skip
    except httpx.InvalidURL:
        return  # a path httpx itself will not send
    assert answer.status_code < 500, (request, answer.status_code, answer.text[:500])


@settings(max_examples=max(20, EXAMPLES // 5), deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=True)  # fmt: skip
@given(properties=st.dictionaries(text, json_values, max_size=5), n=st.integers(1, 20))
def test_what_is_acknowledged_is_stored(
    server: dict[str, Any], properties: dict[str, Any], n: int
) -> None:
    running: Server = server["server"]
    batch = [{"type": "track", "userId": "fuzz", "event": "Fuzzed",
              "messageId": f"fz-{uuid.uuid4().hex}", "properties": properties}
             for _ in range(n)]  # fmt: skip
    answer = httpx.post(
        f"{running.url}/v1/batch", json={"batch": batch},
        headers={"Authorization": f"Bearer {server['keys']['write']}"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code < 500, answer.text
    refused = {e["index"] for e in answer.json().get("errors", [])}
    server["accepted"].update(e["messageId"] for i, e in enumerate(batch) if i not in refused)
    server["sent"].update(e["messageId"] for e in batch)


def test_after_all_that_roost_is_healthy_and_holds_what_it_acknowledged(
    server: dict[str, Any],
) -> None:
    running: Server = server["server"]
    assert httpx.get(f"{running.url}/readyz", timeout=10).status_code == 200
    answer = httpx.post(
        f"{running.url}/api/v1/sql?consistent=true",
        json={"sql": "select message_id from events where message_id like 'fz-%'"},
        headers={"Authorization": f"Bearer {server['keys']['read']}"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    stored = {row[0] for row in answer.json()["rows"]}
    assert stored == server["accepted"] and server["accepted"], (
        len(stored),
        len(server["accepted"]),
    )
