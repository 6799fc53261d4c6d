"""`POST /api/v1/sql`: one read-only query over the key's own project, for read keys."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.errors import BadRequest, Stale
from roost.model import Key
from roost.runtime import Runtime
from roost.storage.warehouse import QueryResult
from roost.web.api.reading import json_response, read_endpoint
from roost.web.body import read_body
from roost.web.spec import ApiRoute, Doc


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
    consistent = request.query_params.get("consistent", "").lower() in ("1", "true", "yes")
    # read your writes: every acknowledged event is visible, or the answer says how many not
    behind = 0 if await runtime.caught_up() else await runtime.behind()
    if behind and consistent:
        raise Stale(
            f"consistent: the Warehouse is {behind} events behind what was acknowledged; "
            "try again, or ask without consistent=true for an answer that says so",
            field="consistent",
        )
    settings = runtime.settings
    async with runtime.sql_turns.turn(key.project_id, settings.sql_timeout_seconds):
        result = await runtime.query(
            runtime.warehouse.project_sql,
            key.project_id,
            query.sql,
            timeout=settings.sql_timeout_seconds,
            max_rows=settings.sql_max_rows,
            max_bytes=settings.sql_max_bytes,
        )
    answer: dict[str, object] = {
        "columns": result.columns, "rows": result.rows, "truncated": result.truncated,
    }  # fmt: skip
    if behind:
        answer["behind"] = behind
    response = json_response(answer)
    response.headers["X-Roost-Behind"] = str(behind)
    return response


def routes() -> list[BaseRoute]:
    doc = Doc(
        "One read-only SQL query over the project's `events` (and `identities`).",
        body=SQLRequest,
        answer=QueryResult,
        tag="Queries",
    )
    return [ApiRoute("/api/v1/sql", sql, method="POST", doc=doc)]
