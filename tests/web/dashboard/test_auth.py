"""The login, the session cookie, CSRF on every form, roles, and workspaces kept apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from roost.cli import main
from roost.storage.metadata.accounts import users
from roost.web.dashboard.throttle import LoginThrottle
from tests.conftest import Client, Env
from tests.web.dashboard.conftest import PASSWORD, csrf_of, login, person, send

PAGES = ["/", "/p/default/", "/p/default/web", "/p/default/game", "/p/default/product",
         "/p/default/events", "/p/default/events/m1", "/p/default/profiles",
         "/p/default/profiles/u1", "/p/default/live", "/p/default/live/stream",
         "/p/default/live-counter", "/p/default/settings"]  # fmt: skip
FORMS = ["/logout", "/p/default/settings/keys", "/p/default/settings/keys/key_x/revoke",
         "/p/default/settings/config", "/p/default/settings/destinations/d/replay",
         "/p/default/settings/people", "/p/default/settings/shares",
         "/p/default/settings/shares/1/revoke", "/p/default/product/views",
         "/p/default/product/views/delete"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_no_page_works_without_login(env: Env, path: str) -> None:
    response = env.client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", FORMS)
def test_no_form_works_without_login(env: Env, path: str) -> None:
    before = env.runtime.metadata.list_keys("default")
    response = env.client.post(path, data={"csrf": "x", "kind": "admin"})
    assert response.status_code == 401
    assert env.runtime.metadata.list_keys("default") == before


def test_login_sets_an_http_only_session_cookie_and_goes_where_asked(env: Env) -> None:
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "member")
    response = login(env.client, "A@Example.com", target="/p/default/web")
    assert response.status_code == 303
    assert response.headers["location"] == "/p/default/web"
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "roost_session=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert env.client.get("/p/default/web").status_code == 200


def test_cookies_are_secure_over_https(env: Env) -> None:
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "member")
    env.client.client.base_url = "https://roost.test"
    response = login(env.client, "a@example.com")
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "roost_session=" in v
    )
    assert "Secure" in cookie


def test_a_wrong_password_or_unknown_email_is_refused_alike(env: Env) -> None:
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "owner")
    wrong = login(env.client, "a@example.com", "not the password")
    unknown = login(env.client, "b@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert env.client.get("/p/default/").status_code == 303


def test_passwords_are_stored_as_argon2_hashes(env: Env) -> None:
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "owner")
    with env.runtime.metadata.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_short_passwords_are_refused(env: Env) -> None:
    with pytest.raises(Exception, match="password: must be at least 10 characters"):
        env.runtime.accounts.create_user(1, "a@example.com", "short", "owner")


def test_the_login_form_needs_its_csrf_token(env: Env) -> None:
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "owner")
    env.client.get("/login")  # sets the login cookie
    response = env.client.post(
        "/login", data={"email": "a@example.com", "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert env.client.get("/p/default/").status_code == 303  # not logged in


def test_forms_without_the_sessions_csrf_token_are_refused(env: Env, owner: Client) -> None:
    before = len(env.runtime.metadata.list_keys("default"))
    for data in ({"kind": "write"}, {"kind": "write", "csrf": "forged"}):
        response = owner.post("/p/default/settings/keys", data=data)
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert len(env.runtime.metadata.list_keys("default")) == before
    token = csrf_of(owner.get("/p/default/settings").text)
    assert (
        owner.post("/p/default/settings/keys", data={"kind": "write", "csrf": token}).status_code
        == 200
    )
    assert len(env.runtime.metadata.list_keys("default")) == before + 1


def test_another_sessions_token_does_not_pass(env: Env, owner: Client) -> None:
    other = person(env, "member@example.com", "member")
    token = csrf_of(other.get("/p/default/settings").text)
    response = owner.post("/p/default/settings/keys", data={"kind": "write", "csrf": token})
    assert response.status_code == 403


def test_logout_ends_the_session_even_for_a_copied_cookie(env: Env, owner: Client) -> None:
    copied = owner.client.cookies.get("roost_session")
    token = csrf_of(owner.get("/p/default/").text)
    response = owner.post("/logout", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert owner.get("/p/default/").status_code == 303
    thief = env.new_client()
    thief.client.cookies.set("roost_session", copied or "")
    assert thief.get("/p/default/").status_code == 303


def test_a_viewer_reads_pages_but_cannot_reach_settings(env: Env, viewer: Client) -> None:
    assert viewer.get("/p/default/").status_code == 200
    assert "Settings" not in viewer.get("/p/default/web").text
    assert viewer.get("/p/default/settings").status_code == 403
    token = csrf_of(viewer.get("/p/default/").text)
    before = len(env.runtime.metadata.list_keys("default"))
    response = viewer.post("/p/default/settings/keys", data={"kind": "admin", "csrf": token})
    assert response.status_code == 403
    assert len(env.runtime.metadata.list_keys("default")) == before


def test_only_owners_add_people(env: Env) -> None:
    member = person(env, "member@example.com", "member")
    token = csrf_of(member.get("/p/default/settings").text)
    response = member.post(
        "/p/default/settings/people",
        data={"csrf": token, "email": "new@example.com", "password": PASSWORD, "role": "owner"},
    )
    assert response.status_code == 403
    assert [u.email for u in env.runtime.accounts.list_users()] == ["member@example.com"]


def test_an_owner_adds_a_viewer_who_can_log_in(env: Env, owner: Client) -> None:
    token = csrf_of(owner.get("/p/default/settings").text)
    response = owner.post(
        "/p/default/settings/people",
        data={"csrf": token, "email": "new@example.com", "password": PASSWORD, "role": "viewer"},
    )
    assert response.status_code == 303
    fresh = env.new_client()
    assert login(fresh, "new@example.com").status_code == 303
    assert fresh.get("/p/default/settings").status_code == 403


def test_other_workspaces_projects_are_not_found(env: Env, owner: Client) -> None:
    ws = env.runtime.metadata.create_workspace("acme", "free")
    env.runtime.metadata.create_project(ws.id, "acme-web")
    response = owner.get("/p/acme-web/")
    assert response.status_code == 404
    outsider = person(env, "acme@example.com", "owner", workspace="acme")
    assert outsider.get("/p/acme-web/").status_code == 200
    assert outsider.get("/p/default/").status_code == 404
    assert outsider.get("/").headers["location"] == "/p/acme-web/"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_the_server(env: Env, target: str) -> None:
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "owner")
    response = login(env.client, "a@example.com", target=target)
    assert response.headers["location"] == "/"


def test_pages_carry_a_content_security_policy(env: Env, owner: Client) -> None:
    response = owner.get("/p/default/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_roost_users_create_makes_a_login(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    runner = CliRunner()
    result = runner.invoke(main, ["workspaces", "create", "default", "--data", data])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["users", "create", "ops@example.com", "--role", "viewer", "--data", data],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created ops@example.com (viewer)" in result.output
    listed = runner.invoke(main, ["users", "list", "--json", "--data", data])
    assert '"email": "ops@example.com", "role": "viewer"' in listed.output
    short = runner.invoke(
        main, ["users", "create", "b@example.com", "--password", "short", "--data", data]
    )
    assert short.exit_code != 0 and "at least 10 characters" in short.output


def test_password_guessing_is_throttled_per_account_and_per_address(env: Env) -> None:
    now = [1000.0]
    env.app.state.logins = LoginThrottle(clock=lambda: now[0])
    env.runtime.accounts.create_user(1, "a@example.com", PASSWORD, "owner")
    for i in range(20):  # one address (every new_client's) guessing many accounts
        assert login(env.new_client(), f"nobody{i}@example.com", "a guess").status_code == 401
    assert login(env.new_client(), "a@example.com", PASSWORD).status_code == 429
    for _ in range(5):  # another address guessing one account
        assert login(env.client, "a@example.com", "a wrong guess").status_code == 401
    refused = login(env.client, "a@example.com", PASSWORD)  # even the right one must wait
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 901
    assert "Too many failed logins; try again in 901 seconds." in refused.text
    now[0] += 901
    assert login(env.client, "a@example.com", PASSWORD).status_code == 303


def test_a_shared_link_shows_the_report_pages_read_only_until_revoked(
    env: Env, owner: Client, viewer: Client
) -> None:
    send(env, [{"type": "page", "anonymousId": "a", "messageId": "sh1",
                "context": {"page": {"url": "https://shop.test/"}}}])  # fmt: skip
    token = csrf_of(owner.get("/p/default/settings").text)
    made = owner.post("/p/default/settings/shares", data={"label": "board", "csrf": token})
    assert made.status_code == 200
    found = re.search(r"shown once: <code>(http://[^/]+)(/s/[^/<]+)/</code>", made.text)
    assert found, made.text
    base = found.group(2)
    stranger = env.new_client()  # no login
    page = stranger.get(f"{base}/web?period=7d")
    assert page.status_code == 200 and "a read-only shared view" in page.text
    assert "Log out" not in page.text and "/settings" not in page.text
    assert f'href="{base}/game' in page.text and "/p/default" not in page.text
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert 'class="value">1<' in page.text  # the one pageview
    csv_link = re.search(r'<a href="([^"]*)" class="csv"', page.text)
    assert csv_link and stranger.get(csv_link.group(1).replace("&amp;", "&")).status_code == 200
    for hidden in ("/events", "/profiles", "/settings", "/live"):
        assert stranger.get(f"{base}{hidden}").status_code == 404
    assert stranger.get("/s/not-a-token/").status_code == 404
    # a viewer cannot make links; the owner revokes this one and it is gone at once
    viewer_token = csrf_of(viewer.get("/p/default/").text)
    refused = viewer.post("/p/default/settings/shares", data={"label": "x", "csrf": viewer_token})
    assert refused.status_code == 403
    share = env.runtime.shares.list(env.runtime.metadata.project("default").id)[0]
    token = csrf_of(owner.get("/p/default/settings").text)
    owner.post(f"/p/default/settings/shares/{share.id}/revoke", data={"csrf": token})
    assert stranger.get(f"{base}/web").status_code == 404
