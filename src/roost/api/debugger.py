"""`GET /api/v1/debugger/stream` (read or admin key): the live debugger as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from roost.api.reading import read_endpoint
from roost.runtime import Runtime
from roost.storage.metadata import Key

_encode = msgspec.json.Encoder().encode


@read_endpoint("the debugger")
async def stream(request: Request, runtime: Runtime, key: Key) -> Response:
    return sse(runtime, key.project_id)


def sse(runtime: Runtime, project_id: int) -> Response:
    """A project's debugger entries as Server-Sent Events (also the dashboard's live stream)."""
    subscriber = runtime.debugger.subscribe(project_id)  # before the first byte goes out

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b": roost debugger\n\n"
            async for entry in runtime.debugger.entries(subscriber, heartbeat=15.0):
                if entry is None:
                    yield b": keep-alive\n\n"
                else:
                    yield (
                        b"event: "
                        + entry["outcome"].encode()
                        + b"\ndata: "
                        + _encode(entry)
                        + b"\n\n"
                    )
        finally:
            runtime.debugger.unsubscribe(project_id, subscriber)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/debugger/stream", stream, methods=["GET"])]
