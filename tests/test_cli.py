"""The `roost` command: management through the metadata store, send and query through a server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from roost.cli import main
from tests.integration.server import Server, create_key, roost


def invoke(data: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main, [*args[:2], "--data", str(data), *args[2:]] if len(args) > 1 else args
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_json_prints_exactly_one_object(tmp_path: Path) -> None:
    invoke(tmp_path, "projects", "create", "shop")
    out = invoke(
        tmp_path,
        "keys",
        "create",
        "--project",
        "shop",
        "--kind",
        "write",
        "--label",
        "web",
        "--json",
    )
    key = json.loads(out)
    assert isinstance(key, dict)
    assert {"key", "id", "kind", "project"} <= key.keys()
    assert key["kind"] == "write" and key["project"] == "shop" and key["key"].startswith("rw_")
    listed = json.loads(invoke(tmp_path, "keys", "list", "--json"))
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0], "a raw key must never be shown again"
    invoke(tmp_path, "keys", "revoke", key["id"])
    assert json.loads(invoke(tmp_path, "keys", "list", "--json"))[0]["revoked_at"] is not None


def test_workspaces_and_projects(tmp_path: Path) -> None:
    invoke(tmp_path, "workspaces", "create", "acme", "--plan", "pro", "--budget", "1000")
    invoke(tmp_path, "projects", "create", "acme-web", "--workspace", "acme", "--name", "Acme Web")
    projects = json.loads(invoke(tmp_path, "projects", "list", "--json"))
    assert projects == [{"id": 1, "slug": "acme-web", "name": "Acme Web", "workspace": "acme"}]
    invoke(tmp_path, "workspaces", "set", "acme", "--plan", "enterprise", "--no-budget")
    assert json.loads(invoke(tmp_path, "workspaces", "list", "--json")) == [
        {"id": 1, "name": "acme", "plan": "enterprise", "monthly_budget": None}
    ]


def test_errors_are_clear(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["keys", "create", "--data", str(tmp_path), "--project", "nope", "--kind", "write"]
    )
    assert result.exit_code != 0
    assert "no project with slug 'nope'" in result.output


@pytest.mark.slow
def test_serve_send_query_while_running(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        # Key and project commands work while the server holds the store.
        roost("projects", "create", "second", data=data)
        write = create_key(data, "write", "second")
        sent = roost("send", "--event", "CLI Check", "--property", "n=1", data=data)
        assert '"success":true' in sent.stdout
        out = roost(
            "query", "select event, user_id, properties->>'n' as n from events", "--json", data=data
        )
        assert json.loads(out.stdout)["rows"] == [["CLI Check", "roost-cli", "1"]]
        table = roost("query", "select count(*) as events from events", data=data).stdout
        assert table.split() == ["events", "------", "1"]
        message = json.loads(roost("query", "select message_id from events", "--json",
                                   data=data).stdout)["rows"][0][0]  # fmt: skip
        traced = roost("trace", message, data=data).stdout
        assert traced.startswith(f"{message}: track CLI Check") and "Log offset 1" in traced
        unknown = roost("trace", "no-such-id", data=data, check=False)
        assert unknown.returncode != 0 and "is not stored in this project" in unknown.stderr
        assert roost("quarantine", data=data).stdout.startswith("0 held")
        versions = [{"type": "track", "userId": f"v{n}", "event": "Opened", "timestamp": "2024-04-01T10:00:00Z",
                     "context": {"app": {"version": "1.0" if n < 2 else "1.1"}}} for n in range(3)]  # fmt: skip
        default_write = create_key(data, "write", "default")
        assert (
            httpx.post(
                f"{server.url}/v1/batch", json={"batch": versions, "writeKey": default_write}
            ).status_code
            == 200
        )
        compared = roost(
            "builds",
            "1.0",
            "1.1",
            "--range",
            "all",
            "--step",
            "Opened",
            "--step",
            "Paid",
            data=data,
        ).stdout
        assert compared.splitlines()[2].split() == ["1.0", "0", "0", "0"]  # no game sessions
        assert (
            "Funnel, each step from the one before" in compared
            and "Errors new in 1.1: 0" in compared
        )
        funnel = json.loads(roost("builds", "1.0", "1.1", "--range", "all", "--step", "Opened", "--step", "Paid",
                                  "--json", data=data).stdout)["funnel"]  # fmt: skip
        assert [s["people"] for s in funnel] == [[2, 1], [0, 0]]
        replayed = roost("quarantine", "--replay", data=data).stdout
        assert replayed.strip() == "0 stored, 0 still held"
        second = roost(
            "send", "--project", "second", "--key", write, "--event", "Second", data=data
        )
        assert second.returncode == 0
        erased = roost("erase", "roost-cli", data=data).stdout
        assert erased.startswith("Erased 1 events (1 in the Log) of user roost-cli"), erased
        deadline = time.monotonic() + 60
        while "pending" in (listed := roost("erasures", data=data).stdout):
            assert time.monotonic() < deadline, listed
            time.sleep(0.2)
        record = json.loads(roost("erasures", "--json", data=data).stdout)
        assert [(r["user_id"], r["events"]) for r in record] == [("roost-cli", 1)]
        assert record[0]["on_disk_at"] >= record[0]["requested_at"]
        bad = roost("query", "delete from events", data=data, check=False)
        assert bad.returncode != 0 and "only SELECT" in bad.stderr
        keys = json.loads(roost("keys", "list", "--json", data=data).stdout)
        assert all("temporary" not in (k["label"] or "") for k in keys), (
            "temporary keys are deleted"
        )
    finally:
        assert server.stop() == 0
    assert "Write key (shown once, keep it): rw_" in server.output
    assert "curl -s http://127.0.0.1:" in server.output
