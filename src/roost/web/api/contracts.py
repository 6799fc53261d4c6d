"""`GET /api/v1/contracts/violations` (read key): tracking-plan violations per event and rule.

Counted since the server started (the metric `roost_contract_violations_total` keeps them for
Prometheus); each violating event also carries them in `context.protocols.violations`.
"""

from __future__ import annotations

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


def routes() -> list[BaseRoute]:
    doc = Doc("Contract violations counted per event and rule.", tag="Contracts")
    return [ApiRoute("/api/v1/contracts/violations", violations, method="GET", doc=doc)]
