"""The browser clients as Roost serves them: small, cacheable, loadable from any site."""

from __future__ import annotations

import gzip

from roost.web.dashboard.scripts import script
from tests.conftest import Env


def test_the_tracker_is_under_2_kb_gzipped() -> None:
    found = script("roost.js")
    assert found is not None
    assert len(gzip.compress(found[0], 9)) < 2048


def test_scripts_are_served_with_cors_and_revalidated_by_etag(env: Env) -> None:
    first = env.client.get("/js/roost.js")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    assert first.headers["access-control-allow-origin"] == "*"
    again = env.client.get("/js/roost.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert env.client.get("/js/nope.js").status_code == 404


def test_the_game_sdk_is_one_code_as_module_and_classic_script(env: Env) -> None:
    module = env.client.get("/js/roost-game.mjs").text
    classic = env.client.get("/js/roost-game.js").text
    exported = "export { RoostGame as default, RoostGame, RoostGame as OwlsignalClient };"
    assert exported in module and "import.meta.url" in module
    assert "export" not in classic.replace("exports", "") and "import.meta" not in classic
    assert "window.RoostGame = window.OwlsignalClient = RoostGame;" in classic
    body = module.split("const BATCH_EVENTS")[1].split(exported)[0]
    assert body.replace("import.meta.url", "location.href") in classic
