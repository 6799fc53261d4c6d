"""Logging in and out, and the guard every dashboard page goes through.

A page handler is wrapped by `page(...)`: no session cookie (or an ended one) sends a GET to
the login form and refuses anything else; the project in the path must belong to the
user's workspace (404 if not, so other workspaces' slugs are not revealed); every POST must
carry the session's CSRF token in its form; settings need an owner or member. The login
form itself is protected by a double-submit token (a cookie and the same value in the form),
since there is no session yet to hold one.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.errors import ClientError, RateLimited
from roost.model import Project
from roost.runtime import Runtime
from roost.storage.metadata.accounts import Session, User
from roost.web.dashboard import render
from roost.web.dashboard.filters import PageFilters
from roost.web.dashboard.throttle import LoginThrottle
from roost.web.peer import client_ip

SESSION_COOKIE = "roost_session"
LOGIN_COOKIE = "roost_login_csrf"
FORM_FIELD = "csrf"
BAD_TOKEN = "This form's CSRF token is missing or wrong: reload the page and try again."


@dataclass(frozen=True)
class Context:
    """What a page knows about who asks and about what."""

    request: Request
    runtime: Runtime
    session: Session
    project: Project
    projects: list[Project]
    form: FormData | None
    timezone: str = "UTC"  # the project's (its configuration's `timezone`)
    shared: bool = False  # seen through a shared link: no account, the report pages only

    @property
    def base(self) -> str:
        """Where the project's pages are: /p/<slug>, or the shared link's /s/<token>."""
        if self.shared:
            return f"/s/{quote(self.request.path_params['token'], safe='')}"
        return f"/p/{quote(self.project.slug, safe='')}"

    @property
    def user(self) -> User:
        return self.session.user

    @functools.cached_property
    def filtering(self) -> PageFilters:
        """The page's filters (from its URL, read once; a 400 page when one is not
        understood)."""
        return PageFilters(self.request)

    def values(self, **more: Any) -> dict[str, Any]:
        """The template variables every page uses, and the page's own."""
        return {
            "user": self.user,
            "csrf": self.session.csrf,
            "project": self.project,
            "projects": self.projects,
            "period": render.period_of(self.request),
            "filtering": self.filtering,
            "timezone": self.timezone,
            "page_base": self.base,
            "shared": self.shared,
            "comparison": render.comparison_of(self.request),
            "compare_offered": False,  # the pages with totals to compare say so
            "path": self.request.url.path,
            **more,
        }


PageHandler = Callable[[Context], Awaitable[Response]]


def secure(request: Request) -> bool:
    mode = request.app.state.runtime.settings.cookie_secure
    if mode == "always":
        return True
    if mode == "never":
        return False
    return request.url.scheme == "https"


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/",
        secure=secure(request),
        httponly=True,
        samesite="lax",
    )


def refused(request: Request, status: int, message: str) -> Response:
    return render.page(request, "error.html", {"status": status, "message": message}, status)


async def current_session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    runtime: Runtime = request.app.state.runtime
    return await asyncio.to_thread(runtime.accounts.session, token)


def _projects_of(runtime: Runtime, user: User) -> list[Project]:
    return [p for p in runtime.metadata.list_projects() if p.workspace_id == user.workspace_id]


def page(*, configure: bool = False, project: bool = True) -> Callable[[PageHandler], Any]:
    """A dashboard endpoint from `handler(context)`; `configure` pages need owner or member."""

    def wrap(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            session = await current_session(request)
            if session is None:
                if request.method == "GET":
                    target = quote(
                        request.url.path + ("?" + request.url.query if request.url.query else "")
                    )
                    return RedirectResponse(f"/login?next={target}", 303)
                return refused(request, 401, "Please log in first.")
            form = None
            if request.method == "POST":
                form = await request.form()
                sent = form.get(FORM_FIELD)
                if not isinstance(sent, str) or not secrets.compare_digest(sent, session.csrf):
                    return refused(request, 403, BAD_TOKEN)
            if configure and not session.user.can_configure:
                return refused(request, 403, "Viewers cannot see or change settings.")
            projects = await asyncio.to_thread(_projects_of, runtime, session.user)
            if not projects:
                return refused(request, 404, "Your workspace has no project yet.")
            chosen = projects[0]
            if project:
                slug = request.path_params.get("slug")
                found = [p for p in projects if p.slug == slug]
                if not found:
                    return refused(request, 404, f"No project {slug!r} in your workspace.")
                chosen = found[0]
            zone = await asyncio.to_thread(runtime.project_settings.timezone, chosen.id)
            context = Context(request, runtime, session, chosen, projects, form, zone)
            try:
                return await handler(context)
            except ClientError as error:
                return refused(request, error.status, error.message)

        return endpoint

    return wrap


def shared_page(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    """A report page seen through a shared link (/s/<token>/…): no login; the token names
    the project (404 once revoked); no form is taken and nothing is changed (GET only)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        token = request.path_params.get("token", "")
        project_id = await asyncio.to_thread(runtime.shares.project_of, token)
        found = [p for p in await asyncio.to_thread(runtime.metadata.list_projects)
                 if p.id == project_id]  # fmt: skip
        if project_id is None or not found:
            return refused(request, 404, "This link is unknown or was revoked.")
        project = found[0]
        viewer = User(0, project.workspace_id, "", "a shared link", "viewer")
        session = Session(viewer, "", datetime.max)
        zone = await asyncio.to_thread(runtime.project_settings.timezone, project.id)
        context = Context(request, runtime, session, project, [project], None, zone, True)
        try:
            response = await handler(context)
        except ClientError as error:
            return refused(request, error.status, error.message)
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return endpoint


async def login_form(request: Request) -> Response:
    session = await current_session(request)
    target = _safe_next(request.query_params.get("next"))
    if session is not None:
        return RedirectResponse(target, 303)
    return _login_page(request, target, None, 200)


def _login_page(request: Request, target: str, problem: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = render.page(
        request, "login.html", {"csrf": token, "next": target, "problem": problem}, status
    )
    _set_cookie(request, response, LOGIN_COOKIE, token, 3600)
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this server: never an open redirect to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def login(request: Request) -> Response:
    form = await request.form()
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = form.get(FORM_FIELD)
    target = _safe_next(str(form.get("next") or ""))
    if not cookie or not isinstance(sent, str) or not secrets.compare_digest(sent, cookie):
        return refused(request, 403, BAD_TOKEN)
    runtime: Runtime = request.app.state.runtime
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    address = client_ip(request.scope, request.headers, runtime.settings.trust_forwarded_for)
    throttle: LoginThrottle = request.app.state.logins
    try:
        throttle.check(email, address)
        user = await throttle.hash(lambda: runtime.accounts.authenticate(email, password))
    except RateLimited as error:
        page = _login_page(request, target, error.message, 429)
        page.headers["Retry-After"] = str(error.retry_after)
        return page
    if user is None:
        throttle.failed(email, address)
        return _login_page(request, target, "Wrong email or password.", 401)
    throttle.succeeded(email)
    token, _ = await asyncio.to_thread(runtime.accounts.start_session, user)
    response = RedirectResponse(target, 303)
    response.headers.update(render.HEADERS)
    _set_cookie(
        request,
        response,
        SESSION_COOKIE,
        token,
        int(runtime.accounts.session_lifetime.total_seconds()),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@page(project=False)
async def logout(context: Context) -> Response:
    token = context.request.cookies.get(SESSION_COOKIE, "")
    await asyncio.to_thread(context.runtime.accounts.end_session, token)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@page(project=False)
async def home(context: Context) -> Response:
    return RedirectResponse(f"/p/{context.project.slug}/", 303)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
