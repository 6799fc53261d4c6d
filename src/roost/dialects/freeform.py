"""Dialect 4: free-form events, `POST /post` with a flat JSON object.

`event_name` is required, `timestamp` (ISO 8601, or epoch milliseconds) and
`customer_identifier` are optional, and every other field is kept as a property.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import msgspec

from roost.dialects import clock
from roost.dialects.base import (
    MAX_DEPTH,
    IngestRequest,
    Parsed,
    Reply,
    Result,
    json_kind,
    json_problem,
    key_from_headers,
    over_size,
    retry_headers,
    too_deep,
)
from roost.dialects.sender import SERVER, sent_by_a_program
from roost.errors import WRONG_KIND, BadRequest, RoostError, Unauthorized
from roost.model import Event, Reason

MAX_EVENT_NAME = 200
VALIDATION_FAILED = "Body JSON validation failed."
INVALID_KEY = "Invalid x-eventbunker-write-key"  # 002's error texts, word for word
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _invalid(detail: str, field: str | None) -> BadRequest:
    return BadRequest(detail, field=field)


def _timestamp(value: Any) -> datetime:
    try:
        if isinstance(value, str):
            return clock.read(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return clock.from_millis(value)
    except clock.BadTime as exc:
        raise _invalid(f"timestamp: {exc}", "timestamp") from None
    raise _invalid("timestamp: must be an ISO 8601 string or epoch milliseconds", "timestamp")


class FreeformDialect:
    name = "freeform"

    def parse(self, request: IngestRequest) -> Parsed:
        if too_deep(request.body):
            raise _invalid(f"body: nested more than {MAX_DEPTH} levels deep", "body")
        try:
            body = _decode(request.body)
        except msgspec.ValidationError:
            raise _invalid("body: must be a JSON object", "body") from None
        except (msgspec.DecodeError, RecursionError) as exc:
            raise _invalid(f"body: {json_problem(request.body, exc)}", "body") from None
        name = body.pop("event_name", None)
        if not isinstance(name, str) or not name:
            raise _invalid("event_name: is required and must be a non-empty string", "event_name")
        if len(name) > MAX_EVENT_NAME:
            raise _invalid(f"event_name: must be at most {MAX_EVENT_NAME} characters", "event_name")
        timestamp = body.pop("timestamp", None)
        original = _timestamp(timestamp) if timestamp is not None else None
        customer = body.pop("customer_identifier", None)
        if customer is not None and (
            isinstance(customer, bool) or not isinstance(customer, str | int | float)
        ):
            raise _invalid("customer_identifier: must be a string or number", "customer_identifier")
        for key, value in body.items():
            if isinstance(value, dict):
                raise _invalid(
                    f"{key}: nested objects are not allowed (got {json_kind(value)})", key
                )
        body_key = body.pop(
            "writeKey", None
        )  # docs/wire-contracts.md: any write request may carry it
        if body_key is not None and not isinstance(body_key, str):
            raise _invalid("writeKey: must be a string", "writeKey")
        parsed = Parsed(key=key_from_headers(request.headers) or body_key, total=1, single=True)
        if over_size(request.body, request.max_event_bytes):
            parsed.reject(
                0,
                Reason.TOO_LARGE,
                f"event must be at most {request.max_event_bytes} bytes",
                None,
                413,
            )
            return parsed
        user_agent = request.headers.get("user-agent")
        server_side = sent_by_a_program(user_agent)
        if server_side:  # a program's own agent names no visitor's device
            user_agent = None
        parsed.add(
            0,
            Event(
                message_id=parsed.new_id(),
                project_id=0,
                dialect=self.name,
                type="track",
                event=name,
                user_id=str(customer) if customer is not None and customer != "" else None,
                timestamp=original or request.received_at,
                original_timestamp=original,
                received_at=request.received_at,
                properties=body,
                context={"userAgent": user_agent} if user_agent else {},
                device=SERVER if server_side else None,
                ip=request.client_ip,
            ),
        )
        return parsed

    def respond(self, result: Result) -> Reply:
        refused = result.refused
        if refused:
            o = refused[0]
            if o.status == 400:
                return Reply(
                    400, {"error": VALIDATION_FAILED, "detail": o.message, "field": o.field}
                )
            return Reply(o.status, {"error": o.message, "code": o.reason, "field": o.field})
        event = result.stored[0]
        millis = int(result.received_at.timestamp() * 1000)
        return Reply(200, {"unique_req_id": event.message_id, "time_recorded": millis})

    def refuse(self, error: RoostError, total: int) -> Reply:
        if isinstance(error, Unauthorized):
            message = f"{WRONG_KIND} {INVALID_KEY}" if error.message == WRONG_KIND else INVALID_KEY
            body: dict[str, Any] = {"error": message}
        elif error.status == 400:
            body = {"error": VALIDATION_FAILED, "detail": error.message, "field": error.field}
        else:
            body = {"error": error.message, "code": error.code}
        return Reply(error.status, body, retry_headers(error))
