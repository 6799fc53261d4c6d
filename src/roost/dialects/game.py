"""Dialect 2: game telemetry batches, `POST /api/v1/events` with `{"events": [...]}`.

Each event is a `track` whose category is the game event type (progression, design,
resource, error, session). Games must keep working whatever Roost thinks of their data, so
everything short of a broken envelope answers 200 with per-event errors, and an exhausted
budget answers 200 with `reason: "tier_limit"`.

`event_id` (optional, at most 100 characters) is Roost's extension: when a client sets it,
it becomes the messageId, so a batch retried after a lost answer is stored once.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
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
    json_kind,
    key_from_headers,
    retry_headers,
)
from roost.errors import BudgetExceeded, RateLimited, RoostError
from roost.model import Event, Reason

GAME_TYPES = ("progression", "design", "resource", "error", "session")
MAX_EVENTS = 100
Scalar = str | int | float | bool | None


class GameEvent(msgspec.Struct):
    build_version: str
    session_id: str
    player_hash: str
    ts: str
    type: str
    name: str
    value: int | float | None = None
    dim01: str | None = None
    dim02: str | None = None
    dim03: str | None = None
    data: dict[str, Any] | None = None
    event_id: str | None = None


class Envelope(msgspec.Struct):
    events: list[msgspec.Raw]
    writeKey: str | None = (
        None  # docs/wire-contracts.md: any write request may carry its key in the body
    )


_event = msgspec.json.Decoder(GameEvent)
_envelope = msgspec.json.Decoder(Envelope)


def _length(value: str, low: int, high: int) -> str | None:
    if low <= len(value) <= high:
        return None
    return f"must be {low}–{high} characters (got {len(value)})"


def check(e: GameEvent) -> tuple[datetime | None, list[tuple[str, str]]]:
    """The event's time, and every (field, rule) it breaks: the SDK is told them all at once."""
    found: list[tuple[str, str]] = []
    ts: datetime | None = None
    if problem := _length(e.build_version, 1, 64):
        found.append(("build_version", problem))
    try:
        uuid.UUID(e.session_id)
    except ValueError:
        found.append(("session_id", f"must be a UUID (got {e.session_id[:40]!r})"))
    if problem := _length(e.player_hash, 32, 64):
        found.append(("player_hash", problem))
    try:
        ts = clock.read(e.ts)
    except clock.BadTime as exc:
        found.append(("ts", str(exc)))
    if e.type not in GAME_TYPES:
        found.append(("type", f"must be one of {', '.join(GAME_TYPES)} (got {e.type[:40]!r})"))
    if problem := _length(e.name, 1, 100):
        found.append(("name", problem))
    if e.value is not None and (isinstance(e.value, bool) or not math.isfinite(e.value)):
        found.append(("value", "must be a finite number"))
    for name in ("dim01", "dim02", "dim03"):
        dim = getattr(e, name)
        if dim is not None and len(dim) > 64:
            found.append((name, f"must be at most 64 characters (got {len(dim)})"))
    for key, value in (e.data or {}).items():
        if not isinstance(value, Scalar):
            kind = json_kind(value)
            found.append((f"data.{key}", f"must be a string, number, boolean or null (got {kind})"))
    if e.event_id is not None and not 0 < len(e.event_id) <= 100:
        found.append(("event_id", f"must be 1–100 characters (got {len(e.event_id)})"))
    return ts, found


class GameDialect:
    name = "game"

    def parse(self, request: IngestRequest) -> Parsed:
        envelope = decode_body(_envelope, request.body)
        count = counted(envelope.events, "events", MAX_EVENTS)
        parsed = Parsed(
            key=key_from_headers(request.headers) or envelope.writeKey,
            total=count,
            single=False,
            prefix="events",
        )
        for index, raw in enumerate(envelope.events):
            prefix = f"events[{index}]"
            e = parsed.item(index, raw, _event, request.max_event_bytes)
            if e is None:
                continue
            ts, found = check(e)
            if found or ts is None:
                named = [(f"{prefix}.{f}", rule) for f, rule in found]
                first, rule = named[0]
                parsed.reject(
                    index, Reason.INVALID_REQUEST, f"{first}: {rule}", first, more=named[1:]
                )
                continue
            parsed.add(
                index,
                Event(
                    message_id=e.event_id or parsed.new_id(),
                    project_id=0,
                    dialect=self.name,
                    type="track",
                    event=e.name,
                    anonymous_id=e.player_hash,
                    session_id=e.session_id,
                    timestamp=ts,
                    original_timestamp=ts,
                    received_at=request.received_at,
                    category=e.type,
                    value=float(e.value) if e.value is not None else None,
                    dim1=e.dim01,
                    dim2=e.dim02,
                    dim3=e.dim03,
                    build=e.build_version,
                    properties=e.data or {},
                    context={"userAgent": request.headers["user-agent"]}
                    if "user-agent" in request.headers
                    else {},
                    ip=request.client_ip,
                ),
            )
        return parsed

    def respond(self, result: Result) -> Reply:
        errors = []
        refused = sorted(result.refused, key=lambda o: o.index)
        for o in refused:
            errors.append(
                {"index": o.index, "field": o.field, "message": o.message, "code": o.reason}
            )
            errors.extend(
                {"index": o.index, "field": f, "message": f"{f}: {rule}", "code": o.reason}
                for f, rule in o.more
            )
        body = {"accepted": result.accepted, "rejected": len(refused), "errors": errors}
        return Reply(200, body)

    def refuse(self, error: RoostError, total: int) -> Reply:
        """The batch shape whatever went wrong, so an SDK reads one shape. Its document's
        SDK retries a 5xx and drops a 4xx: a spent budget is a 200 (as documented), a rate
        limit a 503 with Retry-After, so a throttled batch is sent again, not lost."""
        status = error.status
        if isinstance(error, BudgetExceeded):
            status = 200
        elif isinstance(error, RateLimited):
            status = 503
        problem = {
            "index": None,
            "field": error.field,
            "message": error.message,
            "code": error.code,
        }
        body: dict[str, Any] = {"accepted": 0, "rejected": total, "errors": [problem]}
        if isinstance(error, BudgetExceeded):
            body["reason"] = "tier_limit"
            return Reply(status, body)
        return Reply(status, body, retry_headers(error))


def body_limit(max_event_bytes: int) -> int:
    """The largest body a batch of MAX_EVENTS events each within `max_event_bytes` can be,
    with room for the envelope: the game route reads this much, whatever the request limit
    (its SDK drops a batch refused with a 4xx)."""
    return MAX_EVENTS * max_event_bytes + 65536


class _Probe(msgspec.Struct):
    events: msgspec.Raw = msgspec.Raw(b"")


_probe = msgspec.json.Decoder(_Probe)


def is_game_batch(body: bytes) -> bool:
    """True when the body is a JSON object with a top-level `events` member (a game batch)."""
    if b'"events"' not in body:
        return False
    try:
        events = _probe.decode(body).events
    except (msgspec.DecodeError, RecursionError):
        return False
    return len(events) > 0
