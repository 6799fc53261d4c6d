"""`GET /api/v1/debugger/stream` (read or admin key): the live debugger as Server-Sent Events."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from roost.consumers.debugger import TooManyStreams
from roost.dialects.base import key_from_headers
from roost.model import Key
from roost.runtime import Runtime
from roost.web.api.reading import error_response, read_endpoint
from roost.web.serving import SEND_BUFFER
from roost.web.spec import ApiRoute, Doc

HEARTBEAT_SECONDS = 15.0
STREAM_SEND_BUFFER = 65536  # bytes the kernel holds for a stream's reader
GATHER = 0.1  # seconds a stream waits after an entry for more, to write them at once


@read_endpoint("the debugger")
async def stream(request: Request, runtime: Runtime, key: Key) -> Response:
    raw = key_from_headers(request.headers)

    def allowed() -> bool:  # the key lookup is cached for key_cache_seconds, then read again
        found = runtime.keys.find(raw)
        return found is not None and found.revoked_at is None

    return sse(request, runtime, key.project_id, f"key:{key.id}", allowed)


def sse(
    request: Request,
    runtime: Runtime,
    project_id: int,
    holder: str,
    allowed: Callable[[], bool | Awaitable[bool]],
) -> Response:
    """A project's debugger entries as Server-Sent Events (also the dashboard's live stream),
    for as long as `allowed()` says the holder may still read them: it is asked every
    `key_cache_seconds`, so a revoked key's stream (or an ended login's) closes within that."""
    try:
        subscriber = runtime.debugger.subscribe(project_id, holder)  # before the first byte
    except TooManyStreams as error:
        response = error_response(error)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    check = max(0.05, runtime.settings.key_cache_seconds)
    send_buffer = request.scope.get("extensions", {}).get(SEND_BUFFER)
    if send_buffer:  # a reader that stops reading costs little and holds little
        send_buffer["limit"](STREAM_SEND_BUFFER)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b": roost debugger\n\n"
            checked = written = time.monotonic()
            async for ready in runtime.debugger.entries(subscriber, every=check, gather=GATHER):
                now = time.monotonic()
                if now - checked >= check:  # asked under traffic too, not only when quiet
                    checked = now
                    verdict = allowed()
                    if not (await verdict if inspect.isawaitable(verdict) else verdict):
                        yield b'event: closed\ndata: {"reason": "the key or login is no longer valid"}'
                        yield b"\n\n"
                        return
                if ready:
                    written = now
                    yield b"".join(
                        b"event: " + entry.outcome + b"\ndata: " + entry.body + b"\n\n"
                        for entry in ready
                    )
                elif now - written >= HEARTBEAT_SECONDS:
                    written = now
                    yield b": keep-alive\n\n"
        finally:
            runtime.debugger.unsubscribe(project_id, subscriber)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def routes() -> list[BaseRoute]:
    doc = Doc(
        "The live debugger: every event's outcome and every delivery, as Server-Sent Events.",
        answer={"type": "string"},
        media="text/event-stream",
        tag="Debugger",
    )
    return [ApiRoute("/api/v1/debugger/stream", stream, method="GET", doc=doc)]
