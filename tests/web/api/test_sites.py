"""The key-less tracker endpoints (Plausible's /api/event, Umami's /api/send): the project
found by its domain, website id or slug; a foreign Origin refused when domains are set; pages
and custom events only; the rate limit per client address; one domain, one project."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from roost.errors import BadRequest
from roost.storage.metadata import project_config
from tests.conftest import Env, make_settings, open_env

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


def plausible(domain: str, path: str = "/") -> dict[str, Any]:
    return {"n": "pageview", "u": f"https://shop.test{path}", "d": domain}


def umami(website: str, name: str | None = None) -> dict[str, Any]:
    payload = {
        "website": website,
        "hostname": "shop.test",
        "url": "/",
        **({"name": name} if name else {}),
    }
    return {"type": "event", "payload": payload}


def stored(env: Env) -> list[Any]:
    return [logged.event for logged in env.runtime.log.read_sync(0, 1000)]


@pytest.fixture
def site(env: Env) -> Env:
    project = env.runtime.metadata.project("default")
    env.runtime.project_settings.set_site(
        project.id, {"domains": ["Shop.test"], "website_id": "5f1b9e2c-site"}
    )
    env.runtime.sites._known = None  # the setting was just made: no waiting out the cache
    return env


def test_found_by_domain_website_id_or_slug(site: Env) -> None:
    headers = {"User-Agent": CHROME}
    for body, path in ((plausible("shop.test", "/a"), "/api/event"),
                       (plausible("default", "/b"), "/api/event"),
                       (umami("5f1b9e2c-site"), "/api/send"),
                       (umami("default", "signup"), "/api/send")):  # fmt: skip
        response = site.client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 202), response.text
    events = stored(site)
    assert [(e.type, e.path, e.dialect) for e in events] == [
        ("page", "/a", "plausible"), ("page", "/b", "plausible"), ("page", "/", "umami"),
        ("track", "/", "umami"),
    ]  # fmt: skip
    assert {e.project_id for e in events} == {site.runtime.metadata.project("default").id}
    assert all(e.ip is None and "ip" not in e.context and e.visitor for e in events)


def test_an_origin_not_of_the_projects_domains_is_refused(site: Env) -> None:
    ok = site.client.post("/api/event", json=plausible("shop.test"),
                          headers={"Origin": "https://www.shop.test"})  # fmt: skip
    assert ok.status_code == 202, ok.text
    refused = site.client.post("/api/send", json=umami("5f1b9e2c-site"),
                               headers={"Origin": "https://evil.test"})  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "Origin"
    assert len(stored(site)) == 1


def test_an_unknown_site_names_its_field(env: Env) -> None:
    response = env.client.post("/api/send", json=umami("no-such-website"))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "payload.website"


def test_the_rate_limit_is_each_client_addresss_own(tmp_path: Path) -> None:
    settings = replace(make_settings(tmp_path), site_rate=0.001, site_burst=2)
    for env in open_env(settings):
        codes = [env.client.post("/api/event", json=plausible("default")).status_code
                 for _ in range(3)]  # fmt: skip
        assert codes == [202, 202, 429]
        other = env.new_client()  # another address: its own allowance
        assert other.post("/api/event", json=plausible("default")).status_code == 202
        assert len(stored(env)) == 3


def test_one_domain_names_one_project(env: Env) -> None:
    stores = env.runtime.config_stores()
    default = env.runtime.metadata.project("default").id
    project_config.apply(stores, default, {"site": {"domains": ["shop.test"]}})
    workspace = env.runtime.metadata.project("default").workspace_id
    other = env.runtime.metadata.create_project(workspace, "other").id
    with pytest.raises(BadRequest) as refused:
        project_config.apply(stores, other, {"site": {"domains": ["docs.test", "shop.test"]}})
    assert refused.value.field == "site.domains[1]"
    with pytest.raises(BadRequest) as bad:
        project_config.apply(stores, other, {"site": {"domains": ["not a host"]}})
    assert bad.value.field == "site.domains[0]"
    assert project_config.export(stores, default)["site"] == {"domains": ["shop.test"]}


def test_props_as_json_text_are_bounded_like_a_body(env: Env) -> None:
    """Plausible's tracker sends props as JSON text inside the JSON: its nesting is checked
    too (deep enough, it made the decoder raise past the 4xx handling)."""
    deep = "[" * 100_000 + "]" * 100_000
    response = env.client.post("/api/event", json={**plausible("default"), "p": deep})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "props"
