"""Roost's own export, taken back: `POST /api/v1/restore` with `{"events": [rows]}`.

Each row is an event as `roost export --format ndjson` wrote it (the stored columns,
snake_case, times in UTC), so export → import into an empty project gives back the same
events: the same messageIds, times (`received_at` included), properties, traits, context and
derived columns (country, visitor, browser…), which could not be derived again (the IP was
never stored). The pipeline runs only its checks on them (pipeline.build's `restore`
stages): enrichment and transformations already ran when the events first came in. A
messageId already stored is not stored twice.
"""

from __future__ import annotations

from typing import Any

import msgspec

from roost.dialects import clock
from roost.dialects.base import (
    IngestRequest,
    Parsed,
    Reply,
    Result,
    counted,
    decode_body,
    describe,
    key_from_headers,
    retry_headers,
    validation_field,
)
from roost.errors import RoostError
from roost.model import Event, Reason

MAX_EVENTS = 2500
TIMES = ("timestamp", "original_timestamp", "sent_at", "received_at")


class Envelope(msgspec.Struct):
    events: list[msgspec.Raw]


_envelope = msgspec.json.Decoder(Envelope)
_row = msgspec.json.Decoder(dict[str, Any])


def is_export_row(event: Any) -> bool:
    """True for a line of Roost's own NDJSON export."""
    return isinstance(event, dict) and {"message_id", "dialect", "received_at"} <= event.keys()


class RestoreDialect:
    name = "restore"

    def parse(self, request: IngestRequest) -> Parsed:
        envelope = decode_body(_envelope, request.body)
        count = counted(envelope.events, "events", MAX_EVENTS)
        parsed = Parsed(
            key=key_from_headers(request.headers), total=count, single=False, prefix="events"
        )
        for index, raw in enumerate(envelope.events):
            prefix = f"events[{index}]"
            row = parsed.item(index, raw, _row, request.max_event_bytes)
            if row is None:
                continue
            try:
                row.pop("log_offset", None)
                row["project_id"] = 0  # the key's project, set by authorize
                event = msgspec.convert(row, Event, strict=False)
                for name in TIMES:
                    value = getattr(event, name)
                    if value is not None:
                        setattr(event, name, clock.utc(value))
            except msgspec.ValidationError as exc:
                field, rule = validation_field(exc, prefix)
                parsed.reject(index, Reason.INVALID_REQUEST, describe(field, rule), field)
                continue
            except clock.OutOfRange as exc:
                parsed.reject(index, Reason.INVALID_REQUEST, f"{prefix}: {exc}", prefix)
                continue
            event.ip = None
            parsed.add(index, event)
        return parsed

    def respond(self, result: Result) -> Reply:
        errors = [
            {"index": o.index, "code": o.reason, "message": o.message, "field": o.field}
            for o in sorted(result.refused, key=lambda o: o.index)
        ]
        body = {"received": result.total, "accepted": result.accepted,
                "rejected": len(errors), "errors": errors}  # fmt: skip
        return Reply(200, body)

    def refuse(self, error: RoostError, total: int) -> Reply:
        body = {"success": False, "code": error.code, "message": error.message,
                "field": error.field}  # fmt: skip
        return Reply(error.status, body, retry_headers(error))
