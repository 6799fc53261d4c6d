"""`GET /api/v1/profiles/{user_id}` (read key): a user's traits, linked ids, groups, activity
and audiences; `GET /api/v1/audiences` and `/api/v1/audiences/{name}/members`: who is in each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.errors import BadRequest, NotFound
from roost.model import Key
from roost.runtime import Runtime
from roost.web.api.reading import json_response, read_endpoint
from roost.web.spec import ApiRoute, Doc


def read_profile(runtime: Runtime, project_id: int, wanted: str) -> dict[str, Any]:
    store = runtime.profiles.store
    with store.engine.connect() as conn:
        user = store.resolve(conn, project_id, wanted) or wanted
        profile = store.profile(conn, project_id, user)
        linked = store.aliases_of(conn, project_id, user)
        groups = [
            {"group_id": g, "traits": store.group(conn, project_id, g) or {}}
            for g in store.groups_of(conn, project_id, user)
        ]
    count, first, last = runtime.warehouse.activity(project_id, [user, *linked])
    if profile is None and count == 0:
        raise NotFound(f"user_id: no profile for {wanted!r} in this project", field="user_id")
    return {
        "user_id": user,
        "traits": profile.traits if profile else {},
        "linked_ids": linked,
        "groups": groups,
        "first_seen": _utc(first),
        "last_seen": _utc(last),
        "event_count": count,
        "audiences": [
            {"name": m.audience, "entered_at": _utc(m.entered_at), "exited_at": _utc(m.exited_at)}
            for m in runtime.audience_store.of_person(project_id, user)
        ],
    }


def read_audiences(runtime: Runtime, project_id: int) -> dict[str, Any]:
    sizes = runtime.audience_store.sizes(project_id)
    return {
        "audiences": [
            {**a.spec(), "members": sizes.get(a.name, 0)}
            for a in runtime.project_settings.audiences(project_id)
        ]
    }


def read_members(runtime: Runtime, project_id: int, name: str, limit: int) -> dict[str, Any]:
    if not any(a.name == name for a in runtime.project_settings.audiences(project_id)):
        raise NotFound(f"name: no audience {name[:200]!r} in this project", field="name")
    found = runtime.audience_store.members(project_id, name, limit)
    return {
        "audience": name,
        "members": [{"person": m.person, "entered_at": _utc(m.entered_at)} for m in found],
        "truncated": len(found) == limit,
    }


def _utc(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


@read_endpoint("profiles")
async def profile(request: Request, runtime: Runtime, key: Key) -> Response:
    await runtime.caught_up()  # read your writes: every acknowledged event is applied
    body = await asyncio.to_thread(
        read_profile, runtime, key.project_id, request.path_params["user_id"]
    )
    return json_response(body)


@read_endpoint("profiles")
async def audiences(request: Request, runtime: Runtime, key: Key) -> Response:
    await runtime.caught_up()
    return json_response(await asyncio.to_thread(read_audiences, runtime, key.project_id))


@read_endpoint("profiles")
async def members(request: Request, runtime: Runtime, key: Key) -> Response:
    raw = request.query_params.get("limit", "1000")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MEMBERS:
        raise BadRequest(f"limit: must be a whole number from 1 to {MAX_MEMBERS}", field="limit")
    await runtime.caught_up()
    name = request.path_params["name"]
    body = await asyncio.to_thread(read_members, runtime, key.project_id, name, int(raw))
    return json_response(body)


MAX_MEMBERS = 100_000


def routes() -> list[BaseRoute]:
    doc = Doc("A person's profile: traits, identities, groups, first and last seen, audiences.",
              tag="Profiles")  # fmt: skip
    return [
        ApiRoute("/api/v1/profiles/{user_id:path}", profile, method="GET", doc=doc),
        ApiRoute("/api/v1/audiences", audiences, method="GET",
                 doc=Doc("The project's audiences, each with its conditions and members.",
                         tag="Profiles")),
        ApiRoute("/api/v1/audiences/{name}/members", members, method="GET",
                 doc=Doc("Who is in an audience now, with when they entered (`limit`, ≤ 100,000).",
                         tag="Profiles")),
    ]  # fmt: skip
