"""What a project's configuration may hold: schemas that fetch nothing, patterns that run in
linear time, YAML without alias bombs — refused when saved, naming the field."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from roost.errors import BadRequest
from roost.storage.metadata.project_config import read_file
from tests.conftest import Env
from tests.pipeline.test_transform import batch, configure
from tests.web.dashboard.conftest import csrf_of, person


class Fetched:
    """A server that records whether anything fetched from it."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"type": "object"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/schema.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def remote() -> Iterator[Fetched]:
    served = Fetched()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.mark.parametrize(
    ("ref", "where"),
    [
        ("REMOTE", "contracts[0].schema.$ref"),
        ("file:///etc/passwd", "contracts[0].schema.properties.a.$ref"),
        ("other.json#/x", "contracts[0].schema.$ref"),
    ],
)
def test_a_schema_with_a_remote_or_file_ref_is_refused_and_nothing_fetched(
    env: Env, remote: Fetched, ref: str, where: str
) -> None:
    ref = remote.url if ref == "REMOTE" else ref
    schema: dict[str, Any] = (
        {"properties": {"a": {"$ref": ref}}} if "properties" in where else {"$ref": ref}
    )
    answer = configure(
        env, "config", {"contracts": [{"target": "E", "schema": schema, "action": "block"}]}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == where
    assert "local" in answer.json()["error"]["message"]
    assert remote.hits == 0


def test_a_local_ref_still_works(env: Env) -> None:
    schema = {
        "$defs": {"money": {"type": "number"}},
        "definitions": {"money": {"type": "number"}},
        "properties": {
            "revenue": {"$ref": "#/definitions/money"},
            "tax": {"$ref": "#/$defs/money"},
        },
    }
    answer = configure(
        env, "config", {"contracts": [{"target": "E", "schema": schema, "action": "block"}]}
    )
    assert answer.status_code == 200, answer.text
    result = batch(env, {"event": "E", "properties": {"revenue": "ten", "tax": 1}})
    assert [e["code"] for e in result["errors"]] == ["contract_violation"]


def test_a_catastrophic_pattern_runs_in_linear_time(env: Env) -> None:
    steps = [{"step": "filter", "when": {"field": "properties.v", "matches": "^(a+)+$"}}]
    assert configure(env, "transformations", steps).status_code == 200
    schema = {"properties": {"w": {"type": "string", "pattern": "^(a|aa)+$"}}}
    answer = configure(
        env, "config", {"contracts": [{"target": "E", "schema": schema, "action": "block"}]}
    )
    assert answer.status_code == 200, answer.text
    started = time.monotonic()
    result = batch(env, {"event": "E", "properties": {"v": "a" * 40 + "!", "w": "a" * 40 + "!"}})
    assert time.monotonic() - started < 10  # a stall, not a speed: Python's re takes minutes
    assert [e["code"] for e in result["errors"]] == ["contract_violation"]  # w fails the pattern


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("transformations", [{"step": "filter", "when": {"field": "event", "matches": r"(a)\1"}}],
         "transformations[0].when.matches"),
        ("config", {"contracts": [{"target": "E", "action": "block",
                                   "schema": {"properties": {"a": {"pattern": "(?=x)"}}}}]},
         "contracts[0].schema.properties.a.pattern"),
    ],
)  # fmt: skip
def test_a_pattern_re2_cannot_run_is_refused(
    env: Env, section: str, value: Any, field: str
) -> None:
    answer = configure(env, section, value)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field


BOMB = """a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def test_a_yaml_alias_bomb_is_refused_on_the_settings_page_and_from_a_file(
    env: Env, tmp_path: Path
) -> None:
    owner = person(env, "owner@example.com", "owner")
    page = owner.get("/p/default/settings")
    answer = owner.post(
        "/p/default/settings/config", data={"csrf": csrf_of(page.text), "config": BOMB}
    )
    assert answer.status_code == 400
    assert "anchors and aliases" in answer.text and len(answer.text) < 200_000
    path = tmp_path / "bomb.yaml"
    path.write_text("project: default\n" + BOMB)
    with pytest.raises(BadRequest, match="anchors and aliases"):
        read_file(path)
    path.write_text("project: default\nunplanned: " + "x" * (2 << 20))
    with pytest.raises(BadRequest, match="at most"):
        read_file(path)
