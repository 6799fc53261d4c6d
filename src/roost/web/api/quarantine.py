"""The quarantine over HTTP: `GET /api/v1/quarantine` (read key) lists what a tracking plan
blocked or a transformation failed on (with `transformation_errors: quarantine`);
`POST /api/v1/quarantine/replay` (admin key) runs it through the current pipeline.

A replay is ingest again, for events Roost already has: the same stages (the plan as it is
now), then the Log. An event that passes is stored with its own messageId, time and
receivedAt, and leaves the quarantine; one still refused stays, with its new reason; dedup
keeps one that was since stored some other way from being stored twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.dialects.base import Parsed
from roost.model import Key
from roost.pipeline.batch import Batch
from roost.runtime import Runtime
from roost.storage.metadata.sites import project_keys
from roost.web.api.reading import json_response, read_endpoint
from roost.web.ingest import append
from roost.web.spec import ApiRoute, Doc

PAGE = 500
LISTED = 100


async def replay(runtime: Runtime, project_id: int) -> dict[str, int]:
    """Every held event of the project through the pipeline again, PAGE at a time."""
    (key,) = await asyncio.to_thread(project_keys, runtime.metadata, "replay", project_id)
    stored = still = 0
    after = 0
    while True:
        rows = await asyncio.to_thread(runtime.quarantine.listed, project_id, PAGE, after)
        if not rows:
            break
        after = rows[-1].id
        parsed = Parsed(key=None, total=len(rows), single=False, prefix="quarantine")
        for i, row in enumerate(rows):
            parsed.add(i, row.event)
        batch = Batch.of("replay", key, parsed)
        runtime.pipeline.run(batch)
        await append(runtime, batch)
        refused = {o.index: (o.reason, o.message, o.field) for o in batch.outcomes if not o.stored}
        # a transformation failing again holds the event again (accepted, not stored), its
        # messageId let go as at ingest; a plan's block is a refusal above already
        again = {event.message_id: r for event, r in batch.held if r.status < 300}
        runtime.dedup.release((project_id, mid) for mid in again)
        for i, row in enumerate(rows):
            if row.message_id in again:
                r = again[row.message_id]
                refused[i] = (r.reason, r.message, r.field)
        await asyncio.to_thread(
            runtime.quarantine.still,
            [(rows[i].id, *why) for i, why in refused.items()],
        )
        done = [row.id for i, row in enumerate(rows) if i not in refused]
        await asyncio.to_thread(runtime.quarantine.release, done)
        stored += len(batch.events)
        still += len(refused)
    return {"stored": stored, "still_held": still}


def listing(runtime: Runtime, project_id: int) -> dict[str, Any]:
    rows = runtime.quarantine.listed(project_id, LISTED)
    return {
        "count": runtime.quarantine.count(project_id),
        "events": [
            {"message_id": r.message_id, "type": r.event.type, "event": r.event.event,
             "reason": r.reason, "message": r.message, "field": r.field,
             "received_at": r.event.received_at.isoformat(), "held_at": r.held_at.isoformat()}
            for r in rows
        ],
    }  # fmt: skip


@read_endpoint("quarantine")
async def held(request: Request, runtime: Runtime, key: Key) -> Response:
    return json_response(await asyncio.to_thread(listing, runtime, key.project_id))


@read_endpoint("quarantine", kinds=("admin",))
async def replayed(request: Request, runtime: Runtime, key: Key) -> Response:
    return json_response(await replay(runtime, key.project_id))


def routes() -> list[BaseRoute]:
    return [
        ApiRoute("/api/v1/quarantine", held, method="GET", doc=Doc(
            "What the tracking plan blocked (the oldest 100 and how many), with why.",
            tag="Events")),
        ApiRoute("/api/v1/quarantine/replay", replayed, method="POST", doc=Doc(
            "Run the quarantine through the current pipeline: what passes is stored (its own "
            "messageId and times), the rest stays with its new reason.", tag="Events")),
    ]  # fmt: skip
