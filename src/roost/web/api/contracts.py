"""`GET /api/v1/contracts/violations` (read key): tracking-plan violations per event and rule;
`GET /api/v1/contracts/draft`: a tracking plan made from what was seen (pipeline/drift.py).

Counted since the server started (the metric `roost_contract_violations_total` keeps them for
Prometheus); each violating event also carries them in `context.protocols.violations`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.model import Key
from roost.runtime import Runtime
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
    return json_response({"contracts": draft_plan(seen)})


def routes() -> list[BaseRoute]:
    doc = Doc("Contract violations counted per event and rule.", tag="Contracts")
    drafted = Doc("A draft tracking plan: each event seen with its properties' types.",
                  tag="Contracts")  # fmt: skip
    return [
        ApiRoute("/api/v1/contracts/violations", violations, method="GET", doc=doc),
        ApiRoute("/api/v1/contracts/draft", draft, method="GET", doc=drafted),
    ]
