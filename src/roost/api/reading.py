"""What every read endpoint shares: a read key, and errors as `{"error": {code, message, field}}`."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from roost.dialects.base import key_from_headers
from roost.errors import ClientError, Forbidden, Unauthorized
from roost.runtime import Runtime
from roost.storage.metadata import Key

_encode = msgspec.json.Encoder().encode


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
