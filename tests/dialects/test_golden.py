"""Golden files: `cases/<dialect>/<case>.input.json` → `<case>.output.json`.

Each input is one HTTP request; its output is the expected status, response body and the
events stored (every field that is not empty). `"<any>"` matches any value (generated ids);
`"<received>"` is the server's receive time, `"<received-10s>"` ten seconds before it. Adding a case is adding two files;
`ROOST_REGEN_GOLDEN=1` writes the outputs of new cases for review.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env

CASES = Path(__file__).parent / "cases"
INPUTS = sorted(CASES.glob("*/*.input.json"))
VOLATILE_RESPONSE_KEYS = {"event_id", "unique_req_id", "time_recorded"}


def _fill(value: Any, keys: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, raw in keys.items():
            value = value.replace("{" + name + "}", raw)
        return value
    if isinstance(value, list):
        return [_fill(v, keys) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, keys) for k, v in value.items()}
    return value


def _stored(env: Env) -> list[dict[str, Any]]:
    events = []
    for logged in env.runtime.log.read_sync(0, 10_000):
        e = logged.event
        row: dict[str, Any] = {}
        for name in e.__struct_fields__:
            value = getattr(e, name)
            if value in (None, {}, False) or name == "ip":
                continue
            if name == "received_at":
                continue
            if name == "timestamp" and e.sent_at is not None and value != e.original_timestamp:
                value = f"<received{(value - e.received_at).total_seconds():+g}s>"
            elif name == "timestamp" and value == e.received_at:
                value = "<received>"
            elif name in ("visitor",) or (name == "message_id" and _generated(value)):
                value = "<any>"
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            elif name == "context":
                value = _days_ago(value)
            row[name] = value
        events.append(row)
    return events


def _days_ago(context: dict[str, Any]) -> dict[str, Any]:
    """A clock note counts days from the receive time: the same case run tomorrow says one
    day more (it failed at midnight)."""
    clock = context.get("roost", {}).get("clock")
    if not isinstance(clock, str):
        return context
    note = re.sub(r"by \d+ days", "by <days> days", clock)
    return {**context, "roost": {**context["roost"], "clock": note}}


def _generated(message_id: str) -> bool:
    return message_id.startswith("evt_") or (len(message_id) == 32 and message_id.isalnum())


def _response(body: Any) -> Any:
    if isinstance(body, dict):
        return {
            k: ("<any>" if k in VOLATILE_RESPONSE_KEYS else _response(v)) for k, v in body.items()
        }
    if isinstance(body, list):
        return [_response(v) for v in body]
    return body


def _matches(expected: Any, actual: Any) -> bool:
    if expected == "<any>":
        return actual is not None
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            _matches(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return bool(expected == actual)


@pytest.mark.parametrize(
    "case", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.input.json')}"
)
def test_golden(case: Path, env: Env) -> None:
    keys = {
        "write_key": env.write_key,
        "read_key": env.read_key,
        "basic_write": base64.b64encode(f"{env.write_key}:".encode()).decode(),
    }
    spec = _fill(json.loads(case.read_text()), keys)
    kwargs: dict[str, Any] = {"headers": spec.get("headers", {})}
    if "json" in spec:
        kwargs["content"] = json.dumps(spec["json"]).encode()
        kwargs["headers"].setdefault("Content-Type", "application/json")
    else:
        kwargs["content"] = spec.get("text", "").encode()
    response = env.client.request(spec.get("method", "POST"), spec["path"], **kwargs)
    actual = {
        "status": response.status_code,
        "response": _response(response.json()) if response.content else None,
        "events": _stored(env),
    }
    expected_path = case.with_name(case.name.replace(".input.json", ".output.json"))
    if not expected_path.exists() and os.environ.get("ROOST_REGEN_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(expected_path.read_text())
    assert _matches(expected, actual), json.dumps(actual, indent=2, ensure_ascii=False)
