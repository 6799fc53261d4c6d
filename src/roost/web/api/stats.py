"""The Stats API (query/stats.py) and the reports on the same engine, for read keys:
`POST /api/v1/query`, `POST /api/v1/reports/funnel`, `.../retention`, the game reports
`.../sessions`, `.../errors`, `.../runs`, `.../resources`, `.../players`, and two builds
compared, `.../builds` (query/builds.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.model import Key
from roost.query import builds
from roost.query.reports import BUILDS_BODY, MAX_ROWS, REPORTS
from roost.runtime import Runtime
from roost.storage.warehouse import QueryResult
from roost.web.api.reading import json_body, json_response, read_endpoint
from roost.web.spec import ApiRoute, Doc


async def _run(runtime: Runtime, sql: str, project_id: int, version: int) -> QueryResult:
    kept = runtime.results.get(sql, version)
    if kept is not None:
        return kept
    timeout = runtime.settings.sql_timeout_seconds
    # a dashboard page asks 4–8 reports at once: they queue behind each other, not fail
    async with runtime.report_turns.turn(project_id, 3 * timeout):
        result = await runtime.query(
            runtime.warehouse.report, sql, timeout=timeout, max_rows=MAX_ROWS
        )
    runtime.results.put(sql, version, result)
    return result


async def answer(
    runtime: Runtime, kind: str, body: Any, project_id: int, *, wait: bool = True
) -> dict[str, Any]:
    """A report's answer (query/reports.py names them). The API and the dashboard both ask
    here, so they cannot disagree. `wait`: first let the Warehouse catch up with every
    acknowledged event (the API reads its writes; a dashboard page does not hold up for the
    last second of traffic)."""
    report = REPORTS[kind]
    parsed = report.parse(body, datetime.now(UTC))
    if wait:  # read your writes, as the SQL endpoint does
        await runtime.caught_up()

    def written() -> tuple[int, str]:
        # The version before the SQL is written: the SQL names what the Warehouse kept then
        # (ClickHouse's hours an erasure marked: clickhouse_hourly.py), and a change meanwhile
        # misses next time. Off the event loop: ClickHouse's version is a query, and a time
        # zone's first report checks its history (query/rollup.py)
        version = runtime.warehouse.version()
        return version, report.build(parsed, project_id, runtime.warehouse.flavor)

    version, sql = await asyncio.to_thread(written)
    return report.shape(parsed, await _run(runtime, sql, project_id, version))


async def builds_compared(
    runtime: Runtime,
    body: Any,
    project_id: int,
    *,
    wait: bool = True,
    reports: tuple[str, ...] = builds.REPORTS,
) -> dict[str, Any]:
    """Two builds compared (query/builds.py): its reports run side by side, as a page's."""
    parsed = builds.parse(body, datetime.now(UTC), reports)
    if wait:
        await runtime.caught_up()
    found = await asyncio.gather(
        *(
            answer(runtime, kind, asked, project_id, wait=False)
            for kind, asked in builds.asks(parsed)
        )
    )
    return builds.combine(parsed, list(found))


@read_endpoint("queries")
async def compare_builds(request: Request, runtime: Runtime, key: Key) -> Response:
    return json_response(await builds_compared(runtime, await json_body(request), key.project_id))


def endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    @read_endpoint("queries")
    async def report(request: Request, runtime: Runtime, key: Key) -> Response:
        return json_response(await answer(runtime, kind, await json_body(request), key.project_id))

    return report


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [
        ApiRoute(r.path, endpoint(r.kind), method="POST",
                 doc=Doc(r.summary, body=r.body, tag="Reports"))
        for r in REPORTS.values()
    ]  # fmt: skip
    return [
        *found,
        ApiRoute("/api/v1/reports/builds", compare_builds, method="POST",
                 doc=Doc("Two builds compared: new and resolved errors, run and funnel "
                         "completion with a significance test.", body=BUILDS_BODY, tag="Reports")),
    ]  # fmt: skip
