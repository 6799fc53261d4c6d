"""A project's pipeline kept in files: roost.toml applied by `roost serve`, YAML by
`roost config apply`, and the CLI's view of deliveries and replays, against a real server."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.receiver import Receiver
from tests.integration.server import Server, create_key, roost

pytestmark = pytest.mark.slow


def test_serve_applies_roost_toml_and_the_cli_shows_and_replays_deliveries(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    receiver = Receiver().start()
    (data / "roost.toml").write_text(
        textwrap.dedent(
            f"""
            log_level = "warning"

            [projects.shop]
            unplanned = "allow"

            [[projects.shop.transformations]]
            step = "rename_event"
            from = "buy"
            to = "Order Completed"

            [[projects.shop.destinations]]
            name = "hook"
            kind = "webhook"
            url = "{receiver.url}"
            batch_seconds = 0.05
            """
        )
    )
    server = Server(data).start()
    try:
        key = create_key(data, "write", "shop")
        for i in range(3):
            response = httpx.post(
                f"{server.url}/v1/track",
                json={"userId": "u", "event": "buy", "messageId": f"m{i}"},
                auth=(key, ""),
            )
            assert response.status_code == 200
        events = receiver.wait_for(3)
        assert [(e["messageId"], e["event"]) for e in events] == [
            (f"m{i}", "Order Completed") for i in range(3)
        ]
        status = json.loads(
            roost("destinations", "status", "--project", "shop", "--json", data=data).stdout
        )
        assert status[0]["name"] == "hook" and status[0]["delivered"] == 3
        replayed = roost("replay", "hook", "--project", "shop", "--from-offset", "2", data=data)
        assert "after offset 1" in replayed.stdout
        assert [e["messageId"] for e in receiver.wait_for(5)][3:] == ["m1", "m2"]
        letters = roost("dead-letters", "hook", "--project", "shop", "--json", data=data)
        assert json.loads(letters.stdout) == []

        (tmp_path / "shop.yaml").write_text(
            yaml.safe_dump(
                {
                    "project": "shop",
                    "transformations": [
                        {"step": "filter", "when": {"field": "event", "equals": "buy"}}
                    ],
                }
            )
        )
        applied = roost("config", "apply", str(tmp_path / "shop.yaml"), data=data)
        assert "shop: applied 1 transformations" in applied.stdout
        shown = yaml.safe_load(roost("config", "show", "--project", "shop", data=data).stdout)
        assert shown["transformations"] == [
            {"step": "filter", "when": {"field": "event", "equals": "buy"}}
        ]
        assert shown["destinations"][0]["url"] == receiver.url  # left alone
        time.sleep(1.2)  # the server's cached steps expire (key_cache_seconds)
        httpx.post(f"{server.url}/v1/track", json={"userId": "u", "event": "buy"}, auth=(key, ""))
        time.sleep(0.3)
        assert len(receiver.events()) == 5  # filtered out: neither stored nor forwarded
    finally:
        server.stop()
        receiver.stop()


def test_a_bad_config_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "bad.toml").write_text(
        '[projects.default]\ntransformations = [{ step = "sample", rate = 5 }]\n'
    )
    data.mkdir()
    result = roost("config", "apply", str(tmp_path / "bad.toml"), data=data, check=False)
    assert result.returncode != 0
    assert "projects.default.transformations[0].rate: must be a number above 0" in result.stderr
