"""Property: no body, header or JSON value makes any ingest endpoint answer 5xx."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Env, make_settings, open_env

PATHS = [
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/import",
    "/api/v1/events",
    "/api/v1/events/batch",
    "/api/v1/events/pageview",
    "/api/v1/events/custom",
    "/post",
    "/api/v1/sql",
]
FIELDS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "name",
    "properties",
    "traits",
    "context",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "messageId",
    "groupId",
    "previousId",
    "batch",
    "events",
    "writeKey",
    "integrations",
    "build_version",
    "session_id",
    "player_hash",
    "ts",
    "value",
    "dim01",
    "data",
    "site_id",
    "url",
    "referrer",
    "props",
    "user_agent",
    "ip_address",
    "event_name",
    "customer_identifier",
    "sql",
    "event_id",
    "category",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "5b1e4f1e-6c53-4a46-8d4c-d9a3f3b6d7a1",
            "f" * 40,
            "https://a.example/x?utm_source=y",
            "track",
            "page",
            "progression",
            "default",
            "1e999",
            "",
            "\x00",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), children, max_size=6
        )
    ),
    max_leaves=30,
)
objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10)
events_like = st.one_of(
    objects,
    st.builds(lambda items: {"batch": items}, st.lists(objects, max_size=5)),
    st.builds(lambda items: {"events": items}, st.lists(objects, min_size=1, max_size=5)),
)


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from open_env(make_settings(tmp_path_factory.mktemp("never5xx"), max_request_bytes=20000))


def _auth(kind: str, env: Env, junk: str) -> dict[str, str]:
    key = {"write": env.write_key, "read": env.read_key, "junk": junk}[kind.split(":")[0]]
    scheme = kind.split(":")[1]
    if scheme == "basic":
        return {
            "Authorization": "Basic "
            + base64.b64encode(f"{key}:".encode("utf-8", "replace")).decode()
        }
    if scheme == "bearer":
        return {"Authorization": f"Bearer {key}"}
    if scheme == "raw":
        return {"Authorization": junk}
    return {"X-Write-Key": key}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PATHS),
    body=st.one_of(
        events_like.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
    ),
    auth=st.sampled_from(
        [
            "write:basic",
            "write:bearer",
            "write:x",
            "read:bearer",
            "junk:raw",
            "junk:basic",
            "junk:x",
        ]
    ),
    junk=st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s),
    compress=st.sampled_from([None, "gzip", "gzip-broken", "deflate", "zstd"]),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
)
def test_no_input_makes_ingest_answer_5xx(
    module_env: Env,
    path: str,
    body: bytes,
    auth: str,
    junk: str,
    compress: str | None,
    content_type: str,
) -> None:
    headers: dict[str, Any] = {}
    with contextlib.suppress(UnicodeEncodeError):
        headers.update(_auth(auth, module_env, junk))
    if content_type:
        headers["Content-Type"] = content_type
    if compress == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif compress:
        headers["Content-Encoding"] = compress.removesuffix("-broken")
    try:
        response = module_env.client.post(path, content=body, headers=headers)
    except UnicodeEncodeError:
        return  # httpx itself refuses such a header value: nothing reached Roost
    assert response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
