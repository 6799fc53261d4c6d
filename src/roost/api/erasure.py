"""Erasure for delete (or admin) keys: `DELETE /api/v1/users/{user_id}`, `POST
/api/v1/erasures` with `{"since", "until"}` (a time range) or `{"user_id"}`, and `GET
/api/v1/erasures`, the record of them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost import erasure
from roost.api.reading import json_body, json_response, read_endpoint
from roost.errors import BadRequest
from roost.runtime import Runtime
from roost.storage.metadata import Key

KINDS = ("delete", "admin")


@read_endpoint("erasure", KINDS)
async def erase_user(request: Request, runtime: Runtime, key: Key) -> Response:
    user_id = request.path_params["user_id"]
    return json_response(await erasure.erase_user(runtime, key, user_id))


def _time(body: dict[str, Any], name: str) -> datetime:
    raw = body.get(name)
    if not isinstance(raw, str):
        raise BadRequest(f"{name}: is required (an ISO 8601 time with a zone)", field=name)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: must be an ISO 8601 time", field=name) from None
    if when.tzinfo is None:
        raise BadRequest(f"{name}: must carry a time zone (Z or +hh:mm)", field=name)
    return when


@read_endpoint("erasure", KINDS)
async def erase(request: Request, runtime: Runtime, key: Key) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or not (
        {"user_id"} <= set(body) or {"since", "until"} & set(body)
    ):
        raise BadRequest(
            'body: give {"user_id": ...} or {"since": ..., "until": ...}', field="body"
        )
    if "user_id" in body:
        user_id = body["user_id"]
        if not isinstance(user_id, str) or not user_id:
            raise BadRequest("user_id: must be a non-empty string", field="user_id")
        return json_response(await erasure.erase_user(runtime, key, user_id))
    since, until = _time(body, "since"), _time(body, "until")
    if until <= since:
        raise BadRequest("until: must come after since", field="until")
    return json_response(await erasure.erase_range(runtime, key, since, until))


@read_endpoint("erasure records", KINDS)
async def erasures(request: Request, runtime: Runtime, key: Key) -> Response:
    found = await asyncio.to_thread(runtime.erasures.list, key.project_id)
    return json_response({"erasures": found})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/users/{user_id:path}", erase_user, methods=["DELETE"]),
        Route("/api/v1/erasures", erase, methods=["POST"]),
        Route("/api/v1/erasures", erasures, methods=["GET"]),
    ]
