"""Shared fixtures: a Runtime on a temporary data dir, an app client, and keys."""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from roost.config import Settings
from roost.devtools.servers import ClickHouse, Missing, Postgres
from roost.runtime import Runtime
from roost.web.app import create_app
from tests.integration.services import missing


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Any:
    """A server binary missing while a fixture starts it: skip (fail in CI), saying why."""
    try:
        return (yield)
    except Missing as exc:
        missing(exc.what, exc.install)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """The same for a server a test body starts."""
    try:
        return (yield)
    except Missing as exc:
        missing(exc.what, exc.install)


class Client:
    """A synchronous face on `httpx.AsyncClient(transport=ASGITransport(app))`.

    The app runs on an event loop in a portal thread, as it would under uvicorn; tests call
    it as plain functions.
    """

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            return await self.client.request(method, url, **kwargs)

        return self.portal.call(send)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)


@dataclass
class Env:
    """A running app with its runtime and the raw keys of the default project."""

    settings: Settings
    runtime: Runtime
    client: Client
    write_key: str
    read_key: str
    app: Any = None
    portal: BlockingPortal | None = None
    others: list[httpx.AsyncClient] = field(default_factory=list)

    def new_client(self) -> Client:
        """Another client on the same app, with its own cookies (a second browser)."""
        assert self.portal is not None
        transport = httpx.ASGITransport(app=self.app, client=("203.0.113.51", 40001))
        client = httpx.AsyncClient(transport=transport, base_url="http://roost.test")
        self.others.append(client)
        return Client(self.portal, client)

    def metrics(self) -> str:
        """The Prometheus text, as a scraper with the metrics token reads it."""
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        return response.text

    def sql(self, query: str, key: str | None = None) -> list[dict[str, Any]]:
        response = self.client.post(
            "/api/v1/sql",
            json={"sql": query},
            headers={"Authorization": f"Bearer {key or self.read_key}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]


_servers: dict[str, Any] = {}
METRICS_TOKEN = "test-metrics-token"


def _started(name: str, server: type[Postgres] | type[ClickHouse]) -> Any:
    """One server of the kind for the whole run, started at the first ask. Missing, it skips
    (fails in CI) right here: the hook above converts it for the first fixture only, as pytest
    keeps a module fixture's first error for the rest of its tests."""
    if name not in _servers:
        try:
            _servers[name] = server().start()
        except Missing as exc:
            missing(exc.what, exc.install)
        atexit.register(_servers[name].stop)
    return _servers[name]


def fresh_postgres_url() -> str:
    """A new, empty database on one PostgreSQL started for the whole run."""
    server = _started("postgres", Postgres)
    name = f"roost_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"


def fresh_clickhouse_url() -> str:
    """A database of its own on one ClickHouse started for the whole run."""
    server = _started("clickhouse", ClickHouse)
    return f"clickhouse://127.0.0.1:{server.port}/roost_{uuid.uuid4().hex[:12]}"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """In-process tests run forwarders in a thread (a process per test costs a second);
    tests/consumers/test_forwarder.py runs each of its tests both ways. With
    ROOST_TEST_METADATA=postgres the metadata lives in PostgreSQL (`make test` runs the
    API, consumer, dashboard and pipeline tests that way too)."""
    base = Settings(
        data=str(tmp_path / "data"), log_format="text", forwarders="thread",
        metrics_token=METRICS_TOKEN,
    )  # fmt: skip
    if os.environ.get("ROOST_TEST_METADATA") == "postgres":
        base = replace(base, metadata_url=fresh_postgres_url())
    if os.environ.get("ROOST_TEST_WAREHOUSE") == "clickhouse":
        base = replace(base, warehouse_url=fresh_clickhouse_url())
    return replace(base, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def open_env(settings: Settings, plan: str = "enterprise") -> Iterator[Env]:
    runtime = Runtime(settings).open()
    runtime.metadata.ensure_default(plan)
    _, write_key = runtime.metadata.create_key("default", "write")
    _, read_key = runtime.metadata.create_key("default", "read")
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 40000))
    with start_blocking_portal() as portal:
        async_client = httpx.AsyncClient(transport=transport, base_url="http://roost.test")
        background = portal.start_task_soon(runtime.background)  # as the app's lifespan does
        try:
            env = Env(
                settings, runtime, Client(portal, async_client), write_key, read_key, app, portal
            )
            yield env
        finally:
            background.cancel()
            for other in [async_client, *env.others]:
                portal.call(other.aclose)
            portal.call(runtime.close)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from open_env(settings)
