"""The API's description: valid OpenAPI 3.1, every route in it, every route in it served."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount

from roost.web import ingest
from roost.web.openapi import openapi_path
from roost.web.spec import ApiRoute
from tests.conftest import Env


@pytest.fixture
def spec(env: Env) -> dict[str, Any]:
    response = env.client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    found: dict[str, Any] = response.json()
    return found


def served(env: Env) -> set[tuple[str, str]]:
    """(path, method) of every route of the API: Starlette's (but the dashboard's pages,
    HTML behind a login) and the bare-ASGI ingest paths."""
    found = set()
    for route in env.app.starlette.routes:
        if isinstance(route, Mount) or route.endpoint.__module__.startswith("roost.web.dashboard"):
            continue
        assert isinstance(route, ApiRoute), f"{route.path}: a route without its Doc"
        for method in route.methods or ():
            if method != "HEAD":
                found.add((openapi_path(route.path)[0], method))
    for path in ingest.PATHS:
        if not path.endswith("/"):  # each also answers with a trailing slash
            found.add((path, "POST"))
    return found


def test_it_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_is_described_and_nothing_else(env: Env, spec: dict[str, Any]) -> None:
    described = {(path, m.upper()) for path, ops in spec["paths"].items() for m in ops}
    routes = served(env)
    assert routes - described == set(), "served but not described"
    assert described - routes == set(), "described but not served"
    assert len(described) > 50


def test_every_described_route_answers(env: Env, spec: dict[str, Any]) -> None:
    """Asked without a key, each answers as itself (401, 200, a 404 of its own in Roost's
    error shape…): never the router's 404 or 405."""
    for path, ops in spec["paths"].items():
        url = re.sub(r"{\w+}", "x", path)
        for method in ops:
            if path == "/api/v1/debugger/stream":
                continue  # a stream; without a key it is a 401 like the rest (test_debugger)
            response = env.client.request(method.upper(), url, content=b"{}")
            assert response.status_code != 405, (method, url)
            if response.status_code == 404:
                assert response.json()["error"]["code"] == "not_found", (method, url)


def test_the_bodies_come_from_the_code(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    track = spec["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]
    message = schemas[track["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"userId", "anonymousId", "event", "properties", "messageId"} <= set(
        message["properties"]
    )
    sql = spec["paths"]["/api/v1/sql"]["post"]
    assert sql["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SQLRequest"
    }
    assert schemas["SQLRequest"]["required"] == ["sql"]
    query = spec["paths"]["/api/v1/query"]["post"]["requestBody"]["content"]["application/json"]
    assert "visitors" in query["schema"]["properties"]["metrics"]["items"]["enum"]
    assert sql["security"] and "a read or an admin key" in sql["description"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_the_page_reads_without_another_site(env: Env, spec: dict[str, Any]) -> None:
    response = env.client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)


def test_dashboard_pages_stay_out(spec: dict[str, Any]) -> None:
    assert not [p for p in spec["paths"] if p.startswith("/p/") or p in ("/", "/login")]
