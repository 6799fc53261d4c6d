"""`POST /api/v1/query`: the Stats API (query/stats.py), for read keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.api.reading import json_body, json_response, read_endpoint
from roost.query import stats
from roost.runtime import Runtime
from roost.storage.metadata import Key


@read_endpoint("queries")
async def query(request: Request, runtime: Runtime, key: Key) -> Response:
    parsed = stats.parse(await json_body(request), datetime.now(UTC))
    warehouse = runtime.warehouse
    sql = stats.build(parsed, key.project_id, warehouse.dialect)
    await runtime.caught_up()  # read your writes, as the SQL endpoint does
    result = await asyncio.to_thread(
        warehouse.report,
        sql,
        timeout=runtime.settings.sql_timeout_seconds,
        max_rows=stats.MAX_LIMIT,
    )
    return json_response(stats.shape(parsed, result.rows))


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/query", query, methods=["POST"])]
