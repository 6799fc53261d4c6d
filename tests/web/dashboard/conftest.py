"""A dashboard on the in-process app: people with each role, logged in on their own clients."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import Client, Env

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(
    client: Client, email: str, password: str = PASSWORD, target: str = "/"
) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"csrf": token, "email": email, "password": password, "next": target}
    )


def person(env: Env, email: str, role: str, workspace: str = "default") -> Client:
    """A new account with `role`, logged in on a client of its own."""
    ws = env.runtime.metadata.workspace(workspace)
    env.runtime.accounts.create_user(ws.id, email, PASSWORD, role)
    client = env.new_client()
    response = login(client, email)
    assert response.status_code == 303, response.text
    return client


def send(env: Env, events: list[dict[str, Any]]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": events}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


@pytest.fixture
def owner(env: Env) -> Client:
    return person(env, "owner@example.com", "owner")


@pytest.fixture
def viewer(env: Env) -> Client:
    return person(env, "viewer@example.com", "viewer")
