"""`POST /api/v1/sql`: one read-only query over the key's own project, for read keys."""

from __future__ import annotations

import asyncio

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.api.body import read_body
from roost.api.reading import json_response, read_endpoint
from roost.errors import BadRequest
from roost.runtime import Runtime
from roost.storage.metadata import Key


class SQLRequest(msgspec.Struct):
    sql: str


_decode = msgspec.json.Decoder(SQLRequest).decode


@read_endpoint("queries")
async def sql(request: Request, runtime: Runtime, key: Key) -> Response:
    body = await read_body(request.headers, request.receive, runtime.settings.max_request_bytes)
    try:
        query = _decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f'body: must be {{"sql": "..."}} ({exc})', field="sql") from None
    await runtime.caught_up()  # read your writes: every acknowledged event is visible
    result = await asyncio.to_thread(
        runtime.warehouse.project_sql,
        key.project_id,
        query.sql,
        timeout=runtime.settings.sql_timeout_seconds,
        max_rows=runtime.settings.sql_max_rows,
    )
    return json_response(result)


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/sql", sql, methods=["POST"])]
