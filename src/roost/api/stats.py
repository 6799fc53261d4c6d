"""The Stats API (query/stats.py) and the reports on the same engine, for read keys:
`POST /api/v1/query`, `POST /api/v1/reports/funnel`, `.../retention`, and the game reports
`.../sessions`, `.../errors`, `.../runs`, `.../resources`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.api.reading import json_body, json_response, read_endpoint
from roost.query import funnels, game, retention, stats
from roost.runtime import Runtime
from roost.storage.metadata import Key
from roost.storage.warehouse import QueryResult


async def _run(runtime: Runtime, sql: str) -> QueryResult:
    await runtime.caught_up()  # read your writes, as the SQL endpoint does
    return await asyncio.to_thread(
        runtime.warehouse.report,
        sql,
        timeout=runtime.settings.sql_timeout_seconds,
        max_rows=stats.MAX_LIMIT,
    )


@read_endpoint("queries")
async def query(request: Request, runtime: Runtime, key: Key) -> Response:
    parsed = stats.parse(await json_body(request), datetime.now(UTC))
    result = await _run(runtime, stats.build(parsed, key.project_id, runtime.warehouse.dialect))
    return json_response(stats.shape(parsed, result.rows))


@read_endpoint("queries")
async def funnel(request: Request, runtime: Runtime, key: Key) -> Response:
    parsed = funnels.parse(await json_body(request), datetime.now(UTC))
    result = await _run(runtime, funnels.build(parsed, key.project_id, runtime.warehouse.dialect))
    return json_response(funnels.shape(parsed, result.rows[0]))


@read_endpoint("queries")
async def cohorts(request: Request, runtime: Runtime, key: Key) -> Response:
    parsed = retention.parse(await json_body(request), datetime.now(UTC))
    sql = retention.build(parsed, key.project_id, runtime.warehouse.dialect)
    result = await _run(runtime, sql)
    return json_response(retention.shape(parsed, result.rows))


def game_report(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @read_endpoint("queries")
    async def report(request: Request, runtime: Runtime, key: Key) -> Response:
        parsed = game.parse(kind, await json_body(request), datetime.now(UTC))
        result = await _run(runtime, game.build(parsed, key.project_id, runtime.warehouse.dialect))
        return json_response(game.shape(parsed, result.columns, result.rows))

    return report


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/query", query, methods=["POST"]),
        Route("/api/v1/reports/funnel", funnel, methods=["POST"]),
        Route("/api/v1/reports/retention", cohorts, methods=["POST"]),
        *(
            Route(f"/api/v1/reports/{kind}", game_report(kind), methods=["POST"])
            for kind in game.REPORTS
        ),
    ]
