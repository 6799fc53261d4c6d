"""`POST /api/v1/sql`: one read-only query over the key's own project, for read keys."""

from __future__ import annotations

import asyncio

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.api.body import read_body
from roost.api.reading import error_response, read_key
from roost.errors import BadRequest, ClientError
from roost.runtime import Runtime

_encode = msgspec.json.Encoder().encode


class SQLRequest(msgspec.Struct):
    sql: str


_decode = msgspec.json.Decoder(SQLRequest).decode


async def sql(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        key = read_key(runtime, request, "queries")
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
    except ClientError as error:
        return error_response(error)
    return Response(_encode(result), 200, media_type="application/json")


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/sql", sql, methods=["POST"])]
