"""The ingest endpoints: body → dialect → pipeline → Log → answer, the same for every dialect.

They are bare ASGI: on the hottest path of the server, Starlette's request objects, routing
and middleware cost more than Roost's own work on a small event (bench/RESULTS.md). Every
other route goes through Starlette (web/app.py).

An event is acknowledged only after the Log's append has completed. The pipeline's
reservations are settled by a callback on the append itself, so they are right even when
the client goes away before the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from roost import metrics
from roost.dialects import game, plausible, posthog, restore, segment, umami, web
from roost.dialects.base import Dialect, IngestRequest, Parsed, Reply, Result
from roost.dialects.segment import BATCH_LIMITS, SINGLE_PATHS
from roost.errors import BackendError, BadRequest, ClientError
from roost.model import Key, Reason
from roost.pipeline.batch import Batch
from roost.pipeline.drift import Noticed
from roost.runtime import Runtime
from roost.storage.metadata.schema_seen import Seen
from roost.web.body import Receive
from roost.web.intake import PATHS, SEGMENT, Read, Send, read, serve
from roost.web.spec import Doc

__all__ = ["PATHS", "SEGMENT", "answer", "append", "handle", "ingest"]  # PATHS, SEGMENT: intake's
log = logging.getLogger("roost.ingest")
FREE_FORM = {
    "type": "object",
    "required": ["event_name"],
    "properties": {
        "event_name": {"type": "string"},
        "timestamp": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "customer_identifier": {"type": "string"},
    },
    "additionalProperties": True,
    "description": "Every other field is kept as a property.",
}


def _docs() -> dict[str, Doc]:
    """What each ingest path takes, for the API's description (each also answers with a
    trailing slash, and to OPTIONS for CORS)."""
    docs = {
        path: Doc(f"Segment `{call}` call (dialect 1 of docs/wire-contracts.md).", body=segment.Message,
                  tag="Ingest", auth="write")
        for path, call in SINGLE_PATHS.items()
    }  # fmt: skip
    for path, limit in BATCH_LIMITS.items():
        docs[path] = Doc(
            f"Segment batch of up to {limit} calls; a bad call is rejected alone.",
            body=segment.Envelope, tag="Ingest", auth="write",
        )  # fmt: skip
    docs["/api/v1/events"] = Doc(
        "A game-telemetry batch (dialect 2 of docs/wire-contracts.md: `{\"events\": [...]}`), or one Segment call.",
        body={"anyOf": [game.Envelope, segment.Message]}, tag="Ingest", auth="write",
    )  # fmt: skip
    for kind, struct in (("pageview", web.Pageview), ("custom", web.Custom)):
        docs[f"/api/v1/events/{kind}"] = Doc(
            f"Web analytics {kind} (dialect 3 of docs/wire-contracts.md); the key may be `writeKey` in the body.",
            body=struct, tag="Ingest", auth="write",
        )  # fmt: skip
    docs["/post"] = Doc("A free-form event (dialect 4 of docs/wire-contracts.md).", body=FREE_FORM, tag="Ingest",
                        auth="write")  # fmt: skip
    docs["/api/v1/restore"] = Doc(
        'Rows of Roost\'s own export, `{"events": [...]}` (an admin key): checked, deduplicated.',
        body=restore.Envelope, tag="Ingest", auth="admin",
    )  # fmt: skip
    for path in posthog.PATHS:
        docs[path] = Doc(
            "PostHog's capture API (its libraries by their host alone): one event, an array, "
            "or `{api_key, batch}`; the key is `api_key`/`token` in the body.",
            body={"anyOf": [posthog.Envelope, posthog.Capture]}, tag="Ingest", auth="write",
        )  # fmt: skip
    docs["/api/event"] = Doc(
        "Plausible's event endpoint (no key: the project by `domain`, its site setting).",
        body=plausible.PlausibleEvent, tag="Ingest", auth="",
    )  # fmt: skip
    docs["/api/send"] = Doc(
        "Umami's event endpoint (no key: the project by `payload.website`, its site setting).",
        body=umami.Body, tag="Ingest", auth="",
    )  # fmt: skip
    return docs


DOCS = _docs()


async def handle(
    runtime: Runtime, dialect: Dialect | None, scope: dict[str, Any], receive: Receive, send: Send
) -> None:
    """The ASGI endpoint of every ingest path."""

    async def take(headers: dict[str, str]) -> Reply:
        return await ingest(runtime, dialect, scope, headers, receive)

    await serve(take, scope, send)


async def ingest(
    runtime: Runtime,
    dialect: Dialect | None,
    scope: dict[str, Any],
    headers: dict[str, str],
    receive: Receive,
) -> Reply:
    runtime.inflight.enter()
    try:
        await runtime.backlog.admit()  # before the body is read: a waiting request costs nothing
        return await _ingest(runtime, dialect, scope, headers, receive)
    finally:
        runtime.inflight.leave()


async def _ingest(
    runtime: Runtime,
    dialect: Dialect | None,
    scope: dict[str, Any],
    headers: dict[str, str],
    receive: Receive,
) -> Reply:
    started = time.perf_counter()
    return await answer(runtime, await read(runtime.settings, dialect, scope, headers, receive),
                        started)  # fmt: skip


async def answer(runtime: Runtime, request: Read, started: float) -> Reply:
    """A read request through the key, the pipeline and the Log, and its answer; the same
    whether this process read it or an ingest process of its own did (web/ingest_link.py)."""
    chosen, incoming, parsed = request.chosen, request.request, request.parsed
    batch: Batch | None = None
    try:
        if request.error is not None:
            raise request.error
        assert incoming is not None and parsed is not None
        if parsed.named is not None and runtime.sites.stale():  # read off the event loop
            await asyncio.to_thread(runtime.sites.refresh)
        batch = Batch.of(chosen.name, _key(runtime, parsed, incoming), parsed)
        runtime.pipeline.run(batch)
        await append(runtime, batch)
        result = Result(
            total=parsed.total,
            single=parsed.single,
            stored=batch.events,
            outcomes=batch.outcomes,
            received_at=incoming.received_at,
            warnings=tuple(batch.notes.get("warnings", ())),
        )
        reply = chosen.respond(result)
        _count(chosen.name, batch)
        if batch.outcomes and batch.key is not None:
            runtime.refusals.record(
                batch.key.project_id, chosen.name, incoming.received_at, batch.outcomes
            )
        if batch.held and batch.dialect != "replay":
            await _quarantine(runtime, batch)
        if "seen" in batch.notes or "noticed" in batch.notes:  # first here: recorded
            await _remember(runtime, batch.notes.get("seen", []), batch.notes.get("noticed", []))
        if batch.key is not None and runtime.debugger.watching(batch.key.project_id):
            runtime.debugger.publish(
                batch.key.project_id,
                chosen.name,
                incoming.received_at,
                batch.events,
                batch.indexes,
                batch.outcomes,
                batch.notes,
            )
    except ClientError as error:
        total = parsed.total if parsed else 1
        reply = chosen.refuse(error, total)
        metrics.EVENTS_REJECTED.labels(chosen.name, error.code).inc(total)
        key = batch.key if batch is not None else None
        if key is not None and runtime.debugger.watching(key.project_id):
            runtime.debugger.refused(key.project_id, chosen.name, error, total)
    except BackendError as error:
        log.error("ingest failed: %s", error.message)
        refused = chosen.refuse(error, parsed.total if parsed else 1)
        reply = Reply(refused.status, refused.body, {"Retry-After": "1", **refused.headers})
    _child(metrics.INGEST_REQUEST_SECONDS, chosen.name, reply.status).observe(
        time.perf_counter() - started
    )
    return reply


def _key(runtime: Runtime, parsed: Parsed, incoming: IngestRequest) -> Key | None:
    """The request's key; for a key-less tracker's, one made for the project it names."""
    if parsed.named is None:
        return runtime.keys.find(parsed.key)
    by, name, field = parsed.named
    origin = incoming.headers.get("origin")
    key = runtime.sites.find(name, by, incoming.client_ip, origin)
    if key is None:
        setting = "site.domains" if by == "domain" else "site.website_id"
        raise BadRequest(
            f"{field}: no project is named {name[:100]!r} (by its {setting} or its slug)",
            field=field,
        )
    return key


async def append(runtime: Runtime, batch: Batch) -> None:
    """Into the Log, the pipeline's reservations settled by the append itself."""
    if not batch.events:
        runtime.pipeline.settle(batch, stored=True)
        return
    appended = asyncio.ensure_future(runtime.log.append(batch.events))  # a future: no task

    def settle(done: asyncio.Future[Any]) -> None:
        ok = not done.cancelled() and done.exception() is None
        runtime.pipeline.settle(batch, stored=ok)

    appended.add_done_callback(settle)
    await asyncio.shield(appended)


async def _quarantine(runtime: Runtime, batch: Batch) -> None:
    """Keep what the tracking plan blocked or a transformation failed on, to run again once
    it is fixed. A blocked event's client was told (nothing is acknowledged): a failure to
    keep it is logged. A failed transformation's event is answered as accepted, so a failure
    to keep it fails the request (503: the client sends it again); and the messageId dedup
    took for it (dedup comes before the transformations; the plan before dedup) is let go:
    a retry or a replay must not be dropped as a duplicate."""
    project = batch.project_key.project_id
    items = [(event, r.reason, r.message, r.field) for event, r in batch.held]
    runtime.dedup.release((project, e.message_id) for e, r in batch.held if r.status < 300)
    try:
        await asyncio.to_thread(runtime.quarantine.hold, project, items)
    except Exception as exc:
        log.exception("could not quarantine %d held events", len(items))
        if any(r.status < 300 for _, r in batch.held):
            raise BackendError(
                "the quarantine could not be written; send the events again"
            ) from exc


async def _remember(runtime: Runtime, seen: list[Seen], noticed: list[Noticed]) -> None:
    try:
        await asyncio.to_thread(runtime.seen.add, seen, noticed)
    except Exception:
        log.exception("could not record %d newly seen properties", len(seen) + len(noticed))


_CHILDREN: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: object) -> Any:
    """A metric's child for these labels, looked up once (prometheus_client's `labels()`
    takes a lock and checks its arguments on every call: microseconds per request)."""
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*(str(label) for label in labels))
    return child


def _count(dialect: str, batch: Batch) -> None:
    project = batch.key.project_slug if batch.key else ""
    if batch.events:
        _child(metrics.EVENTS_ACCEPTED, dialect, project).inc(len(batch.events))
    if batch.outcomes:
        duplicates = sum(1 for o in batch.outcomes if o.reason == Reason.DUPLICATE)
        if duplicates:
            metrics.EVENTS_DEDUPLICATED.labels(dialect, project).inc(duplicates)
        metrics.count_rejections(dialect, Counter(o.reason for o in batch.outcomes if not o.stored))
