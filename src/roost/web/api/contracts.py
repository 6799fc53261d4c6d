"""`GET /api/v1/contracts/violations` (read key): tracking-plan violations per event and rule;
`GET /api/v1/contracts/draft`: a tracking plan made from what was seen (pipeline/drift.py);
`GET /api/v1/contracts/drift?since=`: what was seen for the first time since then.

Counted since the server started (the metric `roost_contract_violations_total` keeps them for
Prometheus); each violating event also carries them in `context.protocols.violations`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.errors import BadRequest
from roost.model import Key
from roost.runtime import Runtime
from roost.storage.metadata.schema_seen import MAX_LISTED
from roost.web.api.reading import json_response, read_endpoint
from roost.web.spec import ApiRoute, Doc


@read_endpoint("contracts")
async def violations(request: Request, runtime: Runtime, key: Key) -> Response:
    counts = sorted(
        (
            (event, rule, n)
            for (project, event, rule), n in runtime.contracts.violations.items()
            if project == key.project_id
        ),
        key=lambda row: (-row[2], row[0], row[1]),
    )
    body = {"violations": [{"event": e, "rule": r, "count": n} for e, r, n in counts]}
    return json_response(body)


def draft_plan(seen: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Contracts (`allow`: flagging, not blocking) with each event's seen properties and
    types, for the configuration document's `contracts` once reviewed."""
    return [
        {"target": label, "action": "allow",
         "schema": {"type": "object",
                    "properties": {name: {"type": kind} for name, kind in properties.items()}}}
        for label, properties in seen.items()
    ]  # fmt: skip


@read_endpoint("contracts")
async def draft(request: Request, runtime: Runtime, key: Key) -> Response:
    seen = await asyncio.to_thread(runtime.seen.of, key.project_id)
    distinct = runtime.drift.distinct(key.project_id)
    values = {f"{label}.{name}": n for (label, name), n in sorted(distinct.items())}
    return json_response({
        "contracts": draft_plan(seen),
        # this process's estimate of each string property's distinct values (None: past the
        # bound, drift_max_values), beside the draft: not part of a plan
        "distinct_values": values,
    })  # fmt: skip


DRIFT_DAYS = 7


def since_of(raw: str | None, now: datetime) -> datetime:
    """`since` (ISO 8601 with a zone; default a week ago) as naive UTC."""
    if not raw:
        return (now - timedelta(days=DRIFT_DAYS)).replace(tzinfo=None)
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("since: must be an ISO 8601 time with a zone", field="since") from None
    if at.tzinfo is None:
        raise BadRequest("since: must be an ISO 8601 time with a zone", field="since")
    return at.astimezone(UTC).replace(tzinfo=None)


@read_endpoint("contracts")
async def drift(request: Request, runtime: Runtime, key: Key) -> Response:
    start = since_of(request.query_params.get("since"), datetime.now(UTC))
    items = await asyncio.to_thread(runtime.seen.since, key.project_id, start)
    return json_response({
        "since": start.isoformat() + "Z",
        "drift": [{**i, "first_seen": i["first_seen"].isoformat() + "Z"} for i in items],
        # the first MAX_LISTED only: ask again from the last one's first_seen for the rest
        "truncated": len(items) >= MAX_LISTED,
    })  # fmt: skip


def routes() -> list[BaseRoute]:
    doc = Doc("Contract violations counted per event and rule.", tag="Contracts")
    drafted = Doc("A draft tracking plan: each event seen with its properties' types.",
                  tag="Contracts")  # fmt: skip
    return [
        ApiRoute("/api/v1/contracts/violations", violations, method="GET", doc=doc),
        ApiRoute("/api/v1/contracts/draft", draft, method="GET", doc=drafted),
        ApiRoute(
            "/api/v1/contracts/drift",
            drift,
            method="GET",
            doc=Doc(
                "Schema drift first seen since a time (default a week ago): new events "
                "and properties, types changed, bounds passed.",
                tag="Contracts",
            ),
        ),
    ]
