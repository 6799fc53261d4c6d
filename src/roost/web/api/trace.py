"""`GET /api/v1/events/{message_id}/trace` (read key): where an event went (query/trace.py)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.model import Key
from roost.query.trace import trace
from roost.runtime import Runtime
from roost.web.api.reading import json_response, read_endpoint
from roost.web.spec import ApiRoute, Doc


@read_endpoint("trace")
async def event_trace(request: Request, runtime: Runtime, key: Key) -> Response:
    await runtime.caught_up()  # an event just acknowledged is traced, not "not stored"
    message_id = request.path_params["message_id"]
    return json_response(await asyncio.to_thread(trace, runtime, key.project_id, message_id))


def routes() -> list[BaseRoute]:
    doc = Doc(
        "An event's path by its messageId: received, what the pipeline noted, stored (Log "
        "offset), and per destination filtered (by which rule), delivered (when, attempts), "
        "waiting, retrying or dead-lettered.",
        tag="Events",
    )
    return [ApiRoute("/api/v1/events/{message_id}/trace", event_trace, method="GET", doc=doc)]
