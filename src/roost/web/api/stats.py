"""The Stats API (query/stats.py) and the reports on the same engine, for read keys:
`POST /api/v1/query`, `POST /api/v1/reports/funnel`, `.../retention`, and the game reports
`.../sessions`, `.../errors`, `.../runs`, `.../resources`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.model import Key
from roost.query import funnels, game, retention, stats
from roost.runtime import Runtime
from roost.storage.warehouse import QueryResult
from roost.web.api.reading import json_body, json_response, read_endpoint


async def _run(runtime: Runtime, sql: str, wait: bool = True) -> QueryResult:
    if wait:
        await runtime.caught_up()  # read your writes, as the SQL endpoint does
    version = runtime.warehouse.version()  # before the query: a change meanwhile misses next
    kept = runtime.results.get(sql, version)
    if kept is not None:
        return kept
    result = await runtime.query(
        runtime.warehouse.report,
        sql,
        timeout=runtime.settings.sql_timeout_seconds,
        max_rows=stats.MAX_LIMIT,
    )
    runtime.results.put(sql, version, result)
    return result


async def answer(
    runtime: Runtime, kind: str, body: Any, project_id: int, *, wait: bool = True
) -> dict[str, Any]:
    """A report's answer: `query` (the Stats API), `funnel`, `retention`, or a game report.
    The API and the dashboard both ask here, so they cannot disagree. `wait`: first let the
    Warehouse catch up with every acknowledged event (the API reads its writes; a dashboard
    page does not hold up for the last second of traffic)."""
    now = datetime.now(UTC)
    flavor = runtime.warehouse.flavor
    if kind == "query":
        q = stats.parse(body, now)
        return stats.shape(q, (await _run(runtime, stats.build(q, project_id, flavor), wait)).rows)
    if kind == "funnel":
        f = funnels.parse(body, now)
        return funnels.shape(
            f, (await _run(runtime, funnels.build(f, project_id, flavor), wait)).rows[0]
        )
    if kind == "retention":
        r = retention.parse(body, now)
        return retention.shape(
            r, (await _run(runtime, retention.build(r, project_id, flavor), wait)).rows
        )
    g = game.parse(kind, body, now)
    result = await _run(runtime, game.build(g, project_id, flavor), wait)
    return game.shape(g, result.columns, result.rows)


def endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @read_endpoint("queries")
    async def report(request: Request, runtime: Runtime, key: Key) -> Response:
        return json_response(await answer(runtime, kind, await json_body(request), key.project_id))

    return report


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/query", endpoint("query"), methods=["POST"]),
        *(
            Route(f"/api/v1/reports/{kind}", endpoint(kind), methods=["POST"])
            for kind in ("funnel", "retention", *game.REPORTS)
        ),
    ]
