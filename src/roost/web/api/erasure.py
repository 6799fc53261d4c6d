"""Erasure for delete (or admin) keys: `DELETE /api/v1/users/{user_id}`, `POST
/api/v1/erasures` with `{"since", "until"}` (a time range) or `{"user_id"}`, and `GET
/api/v1/erasures`, the record of them."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.consumers import erasure
from roost.errors import BadRequest
from roost.model import Key
from roost.runtime import Runtime
from roost.web.api.reading import json_body, json_response, parse_time, read_endpoint
from roost.web.spec import ApiRoute, Doc

KINDS = ("delete", "admin")


@read_endpoint("erasure", KINDS)
async def erase_user(request: Request, runtime: Runtime, key: Key) -> Response:
    user_id = request.path_params["user_id"]
    return json_response(await erasure.erase_user(runtime, key, user_id))


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
    since, until = parse_time(body.get("since"), "since"), parse_time(body.get("until"), "until")
    if until <= since:
        raise BadRequest("until: must come after since", field="until")
    return json_response(await erasure.erase_range(runtime, key, since, until))


@read_endpoint("erasure records", KINDS)
async def erasures(request: Request, runtime: Runtime, key: Key) -> Response:
    found = await asyncio.to_thread(runtime.erasures.list, key.project_id)
    return json_response({"erasures": found})


def routes() -> list[BaseRoute]:
    return [
        ApiRoute(
            "/api/v1/users/{user_id:path}",
            erase_user,
            method="DELETE",
            doc=Doc(
                "Erase a user: their events, profile and identities, from every store.",
                tag="Erasure",
            ),
        ),
        ApiRoute(
            "/api/v1/erasures",
            erase,
            method="POST",
            doc=Doc(
                "Erase a user (`user_id`) or a time range of the project's events.",
                body=ERASURE,
                tag="Erasure",
            ),
        ),
        ApiRoute(
            "/api/v1/erasures",
            erasures,
            method="GET",
            doc=Doc(
                "The project's erasures: what was erased, and when it left the disk.", tag="Erasure"
            ),
        ),
    ]


ERASURE = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
    },
}
