"""`GET /api/v1/profiles/{user_id}` (read key): a user's traits, linked ids, groups, activity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.errors import NotFound
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


def routes() -> list[BaseRoute]:
    doc = Doc("A person's profile: traits, identities, groups, first and last seen.",
              tag="Profiles")  # fmt: skip
    return [ApiRoute("/api/v1/profiles/{user_id:path}", profile, method="GET", doc=doc)]
