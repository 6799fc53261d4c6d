"""Delivery health (read or admin key): `GET /api/v1/destinations` — each destination's cursor,
lag, counts, last error and recent batches — and its dead letters."""

from __future__ import annotations

import asyncio
from datetime import UTC

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.model import Key
from roost.runtime import Runtime
from roost.web.api.reading import json_response, read_endpoint
from roost.web.spec import ApiRoute, Doc


@read_endpoint("delivery status")
async def list_destinations(request: Request, runtime: Runtime, key: Key) -> Response:
    found = await asyncio.to_thread(runtime.destination_statuses, key.project_id)
    return json_response({"destinations": found})


@read_endpoint("delivery status")
async def dead_letters(request: Request, runtime: Runtime, key: Key) -> Response:
    store = runtime.destinations
    destination = await asyncio.to_thread(store.get, key.project_id, request.path_params["name"])
    letters = await asyncio.to_thread(store.letters, destination.id, None, 1000)
    body = [
        {
            "id": letter.id,
            "status": letter.status,
            "first_offset": letter.first_offset,
            "last_offset": letter.last_offset,
            "count": letter.count,
            "error": letter.error,
            "attempts": letter.attempts,
            "created_at": letter.created_at.replace(tzinfo=UTC).isoformat(),
            "message_ids": [e.get("messageId") for e in letter.events],
        }
        for letter in letters
    ]
    return json_response({"destination": destination.name, "dead_letters": body})


def routes() -> list[BaseRoute]:
    return [
        ApiRoute(
            "/api/v1/destinations",
            list_destinations,
            method="GET",
            doc=Doc(
                "Each destination's delivery status: cursor, lag, failures, dead letters.",
                tag="Destinations",
            ),
        ),
        ApiRoute(
            "/api/v1/destinations/{name}/dead-letters",
            dead_letters,
            method="GET",
            doc=Doc("A destination's dead letters (at most 1,000).", tag="Destinations"),
        ),
    ]
