"""What every read endpoint shares: a read key, and errors as `{"error": {code, message, field}}`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from roost.dialects.base import MAX_DEPTH, json_problem, key_from_headers, too_deep
from roost.errors import BadRequest, ClientError, Forbidden, Unauthorized
from roost.model import Key
from roost.runtime import Runtime
from roost.web.body import read_body

_encode = msgspec.json.Encoder().encode
Handler = Callable[[Request, Runtime, Key], Awaitable[Response]]


def read_key(
    runtime: Runtime, request: Request, what: str, kinds: tuple[str, ...] = ("read", "admin")
) -> Key:
    """The request's key if it is of one of `kinds` (a read or admin key); 401 or 403 if not."""
    key = runtime.keys.find(key_from_headers(request.headers))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("missing, unknown or revoked key")
    if key.kind not in kinds:
        raise Forbidden(f"Please use {key_kinds(kinds)} key for {what}.")
    return key


def key_kinds(kinds: tuple[str, ...]) -> str:
    """ "a read or an admin": the kinds of key an endpoint takes, in words."""
    return " or ".join(f"an {k}" if k[0] in "aeiou" else f"a {k}" for k in kinds)


def error_response(error: ClientError) -> Response:
    body = {"error": {"code": error.code, "message": error.message, "field": error.field}}
    return Response(_encode(body), error.status, media_type="application/json")


def json_response(body: object) -> Response:
    return Response(_encode(body), 200, media_type="application/json")


def read_endpoint(
    what: str, kinds: tuple[str, ...] = ("read", "admin")
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A Starlette endpoint from `handler(request, runtime, key)`, for keys of `kinds` only
    (read or admin keys unless told); a ClientError it raises becomes the error response."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            try:
                return await handler(request, runtime, read_key(runtime, request, what, kinds))
            except ClientError as error:
                return error_response(error)

        endpoint.__dict__["key_kinds"] = kinds  # for the API's description (openapi.py)
        return endpoint

    return wrap


def admin_endpoint(what: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    return read_endpoint(what, ("admin",))


def parse_time(raw: Any, field: str) -> datetime:
    """An ISO 8601 time with a zone (`Z` or `+hh:mm`), as an aware datetime; 400 naming
    `field` otherwise. A naive time would be read in whatever zone the server runs in."""
    if not isinstance(raw, str):
        raise BadRequest(f"{field}: is required (an ISO 8601 time with a zone)", field=field)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field}: must be an ISO 8601 time", field=field) from None
    if when.tzinfo is None:
        raise BadRequest(f"{field}: must carry a time zone (Z or +hh:mm)", field=field)
    return when


async def json_body(request: Request) -> Any:
    """The request's JSON body, read within the request limit and nested at most MAX_DEPTH
    deep (as ingest reads one); 400 naming the problem otherwise."""
    limit = request.app.state.runtime.settings.max_request_bytes
    raw = await read_body(request.headers, request.receive, limit)
    if too_deep(raw):
        raise BadRequest(f"body: nested more than {MAX_DEPTH} levels deep", field="body")
    try:
        return msgspec.json.decode(raw) if raw else None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"body: {json_problem(raw, exc)}", field="body") from None
