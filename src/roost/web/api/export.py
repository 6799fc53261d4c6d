"""`GET /api/v1/export?format=ndjson|csv|parquet&since=…&until=…` (read key): the project's
events streamed in Log order, encoded a record batch at a time (query/export.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from roost.errors import BadRequest
from roost.model import Key
from roost.query import export as encode
from roost.runtime import Runtime
from roost.web.api.reading import parse_time, read_endpoint
from roost.web.spec import ApiRoute, Doc


def _time(request: Request, name: str) -> datetime | None:
    """An optional query parameter's time, as the Warehouse keeps times (naive UTC)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return parse_time(raw, name).astimezone(UTC).replace(tzinfo=None)


@read_endpoint("exports")
async def export(request: Request, runtime: Runtime, key: Key) -> Response:
    kind = request.query_params.get("format", "ndjson")
    if kind not in encode.FORMATS:
        raise BadRequest(f"format: must be one of {', '.join(encode.FORMATS)}", field="format")
    since, until = _time(request, "since"), _time(request, "until")
    await runtime.caught_up()  # read your writes
    batches = runtime.warehouse.export(key.project_id, since=since, until=until)
    name = f"{key.project_slug}-events.{kind}"
    return StreamingResponse(
        encode.ENCODERS[kind](batches),  # a sync iterator: Starlette runs it in a thread
        media_type=encode.FORMATS[kind],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def routes() -> list[BaseRoute]:
    doc = Doc(
        "The project's events as NDJSON, CSV or Parquet, streamed.",
        answer={"type": "string"},
        media="application/x-ndjson",
        query=(
            ("format", "ndjson (default), csv or parquet"),
            ("since", "ISO 8601 time with a zone: events at or after it"),
            ("until", "ISO 8601 time with a zone: events before it"),
        ),
        tag="Export",
    )
    return [ApiRoute("/api/v1/export", export, method="GET", doc=doc)]
