"""The real servers (roost/devtools/servers.py) as the tests take them. A server whose binary is
missing raises `servers.Missing`; the hooks in tests/conftest.py turn that, wherever it is
raised (a fixture, a test body), into a skip saying what to install — or, with
ROOST_REQUIRE_SERVICES=1 (CI), into a failure, so a missing install step cannot hide."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from roost.devtools import servers


def missing(what: str, install: str) -> None:
    message = f"{what} not found: {install}"
    if os.environ.get("ROOST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.Postgres]:
    server = servers.Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def nats_server() -> Iterator[servers.Nats]:
    server = servers.Nats().start()
    yield server
    server.stop()
