"""The real servers (roost/servers.py) as the tests take them: without one a test skips
saying what to install; with ROOST_REQUIRE_SERVICES=1 (CI) a missing server fails instead."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from roost import servers
from roost.servers import terminate

__all__ = ["ClickHouse", "Nats", "NatsCluster", "Postgres", "missing", "terminate"]


def missing(what: str, install: str) -> None:
    message = f"{what} not found: {install}"
    if os.environ.get("ROOST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def _installed() -> Iterator[None]:
    try:
        yield
    except servers.Missing as exc:
        missing(exc.what, exc.install)


class Postgres(servers.Postgres):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _installed():
            super().__init__(*args, **kwargs)


class Nats(servers.Nats):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _installed():
            super().__init__(*args, **kwargs)


class NatsCluster(servers.NatsCluster):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _installed():
            super().__init__(*args, **kwargs)


class ClickHouse(servers.ClickHouse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _installed():
            super().__init__(*args, **kwargs)


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def nats_server() -> Iterator[servers.Nats]:
    server = Nats().start()
    yield server
    server.stop()
