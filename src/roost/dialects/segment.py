"""Dialect 1: Segment's HTTP Tracking API, Roost's native dialect.

Single calls (`/v1/track`, ..., `/api/v1/events`) and batches (`/v1/batch`, `/v1/import`,
`/api/v1/events/batch`). A batch is decoded item by item from raw JSON, so one bad item is
rejected alone, with its index and field, and its size is known without re-encoding it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from roost.dialects import clock, fields
from roost.dialects.base import (
    IngestRequest,
    Parsed,
    Reply,
    Result,
    decode_body,
    decode_single,
    key_from_headers,
    over_size,
    retry_headers,
)
from roost.dialects.fields import text
from roost.errors import BadRequest, RoostError
from roost.model import EVENT_TYPES, Event, Reason

Id = str | int | float


class Message(msgspec.Struct):
    type: str | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    groupId: Id | None = None
    previousId: Id | None = None
    messageId: str | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    writeKey: str | None = None


class Envelope(msgspec.Struct):
    batch: list[msgspec.Raw] | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    writeKey: str | None = None


_message = msgspec.json.Decoder(Message)
_envelope = msgspec.json.Decoder(Envelope)

SINGLE_PATHS = {f"/v1/{t}": t for t in EVENT_TYPES}
# analytics.js (Segment's browser library) posts each call to `<apiHost>/<first letter>`,
# and batches to `/b` when its batching delivery is on.
SINGLE_PATHS.update({f"/v1/{t[0]}": t for t in EVENT_TYPES})
BATCH_LIMITS = {"/v1/batch": 2500, "/v1/import": 2500, "/v1/b": 2500, "/api/v1/events/batch": 500}
MAX_MESSAGE_ID = 100
_TYPES = frozenset(EVENT_TYPES)
_LISTED = ", ".join(EVENT_TYPES)
_NAMED = ("page", "screen")
_WITH_TRAITS = ("identify", "group")


class SegmentDialect:
    name = "segment"

    def parse(self, request: IngestRequest) -> Parsed:
        path = request.path.rstrip("/") or request.path
        if path in BATCH_LIMITS:
            return self._parse_batch(request, BATCH_LIMITS[path])
        return self._parse_single(request, SINGLE_PATHS.get(path))

    def _parse_single(self, request: IngestRequest, call_type: str | None) -> Parsed:
        message = decode_single(_message, request.body)
        parsed = Parsed(
            key=key_from_headers(request.headers) or message.writeKey, total=1, single=True
        )
        if over_size(request.body, request.max_event_bytes):
            rule = f"event must be at most {request.max_event_bytes} bytes"
            parsed.reject(0, Reason.TOO_LARGE, rule, None, 413)
            return parsed
        self._convert(parsed, 0, message, call_type, request, None, None, None, "")
        return parsed

    def _parse_batch(self, request: IngestRequest, limit: int) -> Parsed:
        envelope = decode_body(_envelope, request.body)
        if envelope.batch is None:
            raise BadRequest("batch: is required and must be an array of events", field="batch")
        if len(envelope.batch) > limit:
            raise BadRequest(
                f"batch: at most {limit} events per request (got {len(envelope.batch)})",
                field="batch",
            )
        parsed = Parsed(
            key=key_from_headers(request.headers) or envelope.writeKey,
            total=len(envelope.batch),
            single=False,
            prefix="batch",
        )
        for index, raw in enumerate(envelope.batch):
            message = parsed.item(index, raw, _message, request.max_event_bytes)
            if message is None:
                continue
            self._convert(
                parsed,
                index,
                message,
                None,
                request,
                envelope.sentAt,
                envelope.context,
                envelope.integrations,
                f"batch[{index}].",
            )
        return parsed

    def convert(
        self,
        parsed: Parsed,
        index: int,
        m: Message,
        call_type: str,
        request: IngestRequest,
        prefix: str,
    ) -> None:
        """One message of a call into `parsed`, as a single call's: for dialects that speak
        Segment's calls underneath (PostHog's), named after this instance's `name`."""
        self._convert(parsed, index, m, call_type, request, None, None, None, prefix)

    def _convert(
        self,
        parsed: Parsed,
        index: int,
        m: Message,
        call_type: str | None,
        request: IngestRequest,
        batch_sent_at: datetime | None,
        batch_context: dict[str, Any] | None,
        batch_integrations: dict[str, Any] | None,
        prefix: str,
    ) -> None:
        # The hot path of ingest: written for speed (bench/hotpath.py), each rule as before.
        kind = call_type or m.type
        if kind not in _TYPES:
            if kind is None:
                return _reject(parsed, index, prefix, "type", f"is required (one of {_LISTED})")
            return _reject(
                parsed, index, prefix, "type", f"must be one of {_LISTED} (got {kind!r})"
            )
        user_id = _id(m.userId)
        anonymous_id = _id(m.anonymousId)
        if not user_id and not anonymous_id:
            return _reject(parsed, index, prefix, "userId", "userId or anonymousId is required")
        if kind == "track" and not m.event:
            return _reject(parsed, index, prefix, "event", "is required for a track call")
        group_id = _id(m.groupId)
        if kind == "group" and not group_id:
            return _reject(parsed, index, prefix, "groupId", "is required for a group call")
        previous_id = _id(m.previousId)
        if kind == "alias" and not previous_id:
            return _reject(parsed, index, prefix, "previousId", "is required for an alias call")
        message_id = m.messageId
        if message_id is not None and not 0 < len(message_id) <= MAX_MESSAGE_ID:
            rule = f"must be 1–{MAX_MESSAGE_ID} characters (got {len(message_id)})"
            return _reject(parsed, index, prefix, "messageId", rule)

        context = m.context
        if batch_context:
            context = {**batch_context, **context} if context else batch_context
        elif context is None:
            context = {}
        integrations = m.integrations
        if batch_integrations:
            integrations = (
                {**batch_integrations, **integrations} if integrations else batch_integrations
            )
        elif integrations is None:
            integrations = {}
        received = request.received_at
        sent = m.sentAt or batch_sent_at
        if m.timestamp is None and m.originalTimestamp is None and sent is None:
            # what event_times gives then, without the call (~0.5 µs an event, measured)
            timestamp, original, note = received, None, None
        else:
            try:
                times = clock.event_times(
                    m.timestamp, m.originalTimestamp or m.timestamp, sent, received,
                    request.max_clock_skew,
                )  # fmt: skip
            except clock.OutOfRange as exc:
                return _reject(parsed, index, prefix, "timestamp", str(exc))
            timestamp, original, sent, note = times
            if note is not None:
                context = _note(context, "clock", note)
        properties = m.properties or {}
        named = kind in _NAMED
        event = Event(
            message_id=message_id or parsed.new_id(),
            project_id=0,
            dialect=self.name,
            type=kind,
            event=m.event if kind == "track" else (m.name if named else None),
            user_id=user_id,
            anonymous_id=anonymous_id,
            group_id=group_id,
            previous_id=previous_id,
            timestamp=timestamp,
            original_timestamp=original,
            sent_at=sent,
            received_at=received,
            category=m.category if named else None,
            properties=properties,
            traits=_traits(kind, m.traits, context) if kind in _WITH_TRAITS else {},
            context=context,
            integrations=integrations,
            ip=request.client_ip,
        )
        if context:
            _from_context(event, context)
        if properties:
            _from_properties(event, properties, kind)
        parsed.add(index, event)
        return None

    def respond(self, result: Result) -> Reply:
        if result.single:
            refused = result.refused
            if refused:
                o = refused[0]
                return Reply(
                    o.status,
                    {"success": False, "code": o.reason, "message": o.message, "field": o.field},
                )
            return Reply(200, {"success": True})  # the document's answer, exactly
        errors = [
            {"index": o.index, "code": o.reason, "message": o.message, "field": o.field}
            for o in sorted(result.refused, key=lambda o: o.index)
        ]
        body = {
            "received": result.total,
            "accepted": result.accepted,
            "rejected": len(errors),
            "errors": errors,
        }
        if result.warnings:
            body["warnings"] = result.warnings
        return Reply(200, body)

    def refuse(self, error: RoostError, total: int) -> Reply:
        body = {
            "success": False,
            "code": error.code,
            "message": error.message,
            "field": error.field,
        }
        return Reply(error.status, body, retry_headers(error))


# Where Segment's context keeps what analytics groups by: part → (key, Event field), in order
# (app.version after app.build: the version wins; a mobile library's device type stands
# until a userAgent, if any, says otherwise). Each part is looked up once.
_CONTEXT_FIELDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("page", (("url", "url"), ("referrer", "referrer"), ("path", "path"))),
    ("campaign", (("source", "utm_source"), ("medium", "utm_medium"), ("name", "utm_campaign"),
                  ("term", "utm_term"), ("content", "utm_content"))),
    ("app", (("build", "build"), ("version", "build"))),
    ("device", (("type", "device"),)),
    ("os", (("name", "os"),)),
)  # fmt: skip


def _from_context(event: Event, context: dict[str, Any]) -> None:
    get = context.get
    for part_name, pairs in _CONTEXT_FIELDS:
        part = get(part_name)
        if part.__class__ is dict:
            for key, name in pairs:
                if (value := part.get(key)) is not None:
                    setattr(event, name, text(value))
    if (ip := get("ip")) is not None:
        event.ip = text(ip) or event.ip
    if event.group_id is None and (group := get("groupId")) is not None:
        event.group_id = text(group)
    if (session := get("sessionId")) is not None:
        event.session_id = text(session)


def _from_properties(event: Event, properties: dict[str, Any], kind: str) -> None:
    value, revenue = properties.get("value"), properties.get("revenue")
    if value is not None or revenue is not None:
        event.value = fields.number(value, revenue)
    if kind == "page":
        for name in ("url", "referrer", "path"):
            if (found := properties.get(name)) is not None:
                setattr(event, name, text(found) or getattr(event, name))
    elif kind == "track" and (category := properties.get("category")) is not None:
        event.category = text(category)


def _traits(kind: str, traits: dict[str, Any] | None, context: dict[str, Any]) -> dict[str, Any]:
    """An identify's traits with `context.traits` under them (RudderStack's libraries send
    them only there); a group's own traits. The top-level value wins a clash."""
    if kind == "identify":
        inner = context.get("traits")
        if isinstance(inner, dict) and inner:
            return {**inner, **traits} if traits else dict(inner)
    if kind in ("identify", "group"):
        return traits or {}
    return {}


def _note(context: dict[str, Any], name: str, text: str) -> dict[str, Any]:
    """The context with a note of Roost's under `context.roost` (a copy: it may be shared)."""
    roost = context.get("roost")
    notes = dict(roost) if isinstance(roost, dict) else {}
    notes[name] = text
    return {**context, "roost": notes}


def _reject(parsed: Parsed, index: int, prefix: str, field: str, rule: str) -> None:
    parsed.reject(index, Reason.INVALID_REQUEST, f"{prefix}{field}: {rule}", prefix + field)


def _id(value: Id | None) -> str | None:
    if value.__class__ is str:
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text or None
