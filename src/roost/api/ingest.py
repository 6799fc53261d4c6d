"""The ingest endpoints: body → dialect → pipeline → Log → answer, the same for every dialect.

An event is acknowledged only after `Log.append` returns. The pipeline's reservations are
settled by a callback on the append itself, so they are right even when the client goes
away before the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost import metrics
from roost.api.body import read_body
from roost.dialects.base import Dialect, IngestRequest, Parsed, Reply, Result
from roost.dialects.freeform import FreeformDialect
from roost.dialects.game import GameDialect, is_game_batch
from roost.dialects.segment import BATCH_LIMITS, SINGLE_PATHS, SegmentDialect
from roost.dialects.web import WebDialect
from roost.errors import BackendError, ClientError
from roost.pipeline.batch import Batch
from roost.runtime import Runtime

log = logging.getLogger("roost.ingest")
_encode = msgspec.json.Encoder().encode

SEGMENT = SegmentDialect()
GAME = GameDialect()
WEB = WebDialect()
FREEFORM = FreeformDialect()

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, X-Write-Key",
    "Access-Control-Max-Age": "86400",
}


def client_ip(request: Request, trust_forwarded_for: bool) -> str | None:
    if trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.client.host if request.client else None


def _reply(reply: Reply, origin: str | None) -> Response:
    headers = {**reply.headers, "Access-Control-Allow-Origin": origin or "*"}
    return Response(_encode(reply.body), reply.status, headers, media_type="application/json")


async def ingest(request: Request, dialect: Dialect | None) -> Response:
    """Handle one ingest request; `dialect` None means: decide from the body (/api/v1/events)."""
    started = time.perf_counter()
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    chosen: Dialect = dialect or SEGMENT
    parsed: Parsed | None = None
    try:
        body = await read_body(request, settings.max_request_bytes)
        if dialect is None and is_game_batch(body):
            chosen = GAME
        incoming = IngestRequest(
            path=request.scope["path"],
            headers=request.headers,
            body=body,
            client_ip=client_ip(request, settings.trust_forwarded_for),
            received_at=datetime.now(UTC),
            max_event_bytes=settings.max_event_bytes,
        )
        parsed = chosen.parse(incoming)
        batch = Batch.of(chosen.name, runtime.keys.find(parsed.key), parsed)
        runtime.pipeline.run(batch)
        await _append(runtime, batch)
        result = Result(
            total=parsed.total,
            single=parsed.single,
            stored=batch.events,
            outcomes=batch.outcomes,
            received_at=incoming.received_at,
        )
        reply = chosen.respond(result)
        _count(chosen.name, batch)
    except ClientError as error:
        total = parsed.total if parsed else 1
        reply = chosen.refuse(error, total)
        metrics.EVENTS_REJECTED.labels(chosen.name, error.code).inc(total)
    except BackendError as error:
        log.error("ingest failed: %s", error.message)
        reply = Reply(503, {"error": error.message, "code": error.code}, {"Retry-After": "1"})
    metrics.INGEST_REQUEST_SECONDS.labels(chosen.name, str(reply.status)).observe(
        time.perf_counter() - started
    )
    return _reply(reply, request.headers.get("origin"))


async def _append(runtime: Runtime, batch: Batch) -> None:
    if not batch.events:
        runtime.pipeline.settle(batch, stored=True)
        return
    appended = asyncio.ensure_future(runtime.log.append(batch.events))  # a future: no task

    def settle(done: asyncio.Future[Any]) -> None:
        ok = not done.cancelled() and done.exception() is None
        runtime.pipeline.settle(batch, stored=ok)

    appended.add_done_callback(settle)
    await asyncio.shield(appended)


def _count(dialect: str, batch: Batch) -> None:
    project = batch.key.project_slug if batch.key else ""
    if batch.events:
        metrics.EVENTS_ACCEPTED.labels(dialect, project).inc(len(batch.events))
    if batch.outcomes:
        duplicates = sum(1 for o in batch.outcomes if o.reason == "duplicate")
        if duplicates:
            metrics.EVENTS_DEDUPLICATED.labels(dialect, project).inc(duplicates)
        metrics.count_rejections(dialect, Counter(o.reason for o in batch.outcomes if not o.stored))


async def preflight(request: Request) -> Response:
    origin = request.headers.get("origin") or "*"
    headers = {**CORS_HEADERS, "Access-Control-Allow-Origin": origin}
    asked = request.headers.get("access-control-request-headers")
    if asked:
        headers["Access-Control-Allow-Headers"] = asked
    return Response(status_code=204, headers=headers)


def _endpoint(dialect: Dialect | None) -> Any:
    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return await preflight(request)
        return await ingest(request, dialect)

    return endpoint


def routes() -> list[BaseRoute]:
    table: dict[str, Dialect | None] = dict.fromkeys((*SINGLE_PATHS, *BATCH_LIMITS), SEGMENT)
    table["/api/v1/events"] = None
    table["/api/v1/events/pageview"] = WEB
    table["/api/v1/events/custom"] = WEB
    table["/post"] = FREEFORM
    result: list[BaseRoute] = []
    for path, dialect in table.items():
        endpoint = _endpoint(dialect)
        for variant in (path, path + "/"):
            result.append(Route(variant, endpoint, methods=["POST", "OPTIONS"]))
    return result
