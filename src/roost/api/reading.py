"""What every read endpoint shares: a read key, and errors as `{"error": {code, message, field}}`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from roost.dialects.base import key_from_headers
from roost.errors import ClientError, Forbidden, Unauthorized
from roost.runtime import Runtime
from roost.storage.metadata import Key

_encode = msgspec.json.Encoder().encode
Handler = Callable[[Request, Runtime, Key], Awaitable[Response]]


def read_key(runtime: Runtime, request: Request, what: str) -> Key:
    """The request's key if it may read (a read or admin key); 401 or 403 otherwise."""
    key = runtime.keys.find(key_from_headers(request.headers))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("missing, unknown or revoked key")
    if key.kind not in ("read", "admin"):
        raise Forbidden(f"Please use a read key for {what}.")
    return key


def error_response(error: ClientError) -> Response:
    body = {"error": {"code": error.code, "message": error.message, "field": error.field}}
    return Response(_encode(body), error.status, media_type="application/json")


def json_response(body: object) -> Response:
    return Response(_encode(body), 200, media_type="application/json")


def read_endpoint(what: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A Starlette endpoint from `handler(request, runtime, key)`, for read keys only;
    a ClientError it raises becomes the error response."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            try:
                return await handler(request, runtime, read_key(runtime, request, what))
            except ClientError as error:
                return error_response(error)

        return endpoint

    return wrap
