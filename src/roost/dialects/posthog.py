"""PostHog's capture API, so PostHog's own libraries work against Roost by their host alone.

posthog-python and posthog-node post `{"api_key", "batch": [...], "sent_at"}` to `/batch/`;
posthog-js posts to `/e/` or `/i/v0/e/` a JSON array (or one event), gzipped with
`?compression=gzip-js` and no Content-Encoding, or base64 in a form's `data` field; `/capture/`
takes one event or a batch. The key is the body's `api_key` (or `token`, or each event's
`properties.token`, as posthog-js sends it).

Each event becomes a Segment call and goes through the Segment dialect's rules:
`$pageview` → page, `$screen` → screen, `$identify` / `$set` / `$set_once` → identify,
`$groupidentify` → group, `$create_alias` → alias, anything else → track. `distinct_id` is the
user id unless PostHog says it is anonymous (`$is_identified: false`, or equal to the
`$device_id`); an `$identify` links its `$anon_distinct_id` to it. `$set` are traits; `$set_once`
traits are kept in `context.$set_once` and set only where the profile has none. A captured
event carrying `$set`/`$set_once` is stored with an identify beside it (messageId
`<uuid>:set`), so the profile changes as PostHog's person would.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import msgspec

from roost.dialects.base import (
    IngestRequest,
    Parsed,
    Reply,
    Result,
    decode_body,
    key_from_headers,
    retry_headers,
)
from roost.dialects.segment import Id, Message, SegmentDialect, _id
from roost.errors import BadRequest, PayloadTooLarge, RoostError
from roost.model import Reason

PATHS = ("/batch", "/capture", "/e", "/i/v0/e", "/track")
MAX_EVENTS = 2500  # per request, as the Segment batch path


class _Calls(SegmentDialect):
    """Segment's calls, each event named as PostHog's."""

    name = "posthog"


_SEGMENT = _Calls()


class Capture(msgspec.Struct):
    event: str | None = None
    distinct_id: Id | None = None
    properties: dict[str, Any] | None = None
    timestamp: datetime | None = None
    offset: int | None = None  # posthog-js: milliseconds before sending, instead of a time
    uuid: str | None = None
    set: dict[str, Any] | None = msgspec.field(default=None, name="$set")
    set_once: dict[str, Any] | None = msgspec.field(default=None, name="$set_once")
    api_key: str | None = None
    token: str | None = None


class Envelope(msgspec.Struct):
    batch: list[msgspec.Raw] | None = None
    api_key: str | None = None
    token: str | None = None
    sent_at: datetime | None = None
    historical_migration: bool | None = None


_capture = msgspec.json.Decoder(Capture)
_envelope = msgspec.json.Decoder(Envelope)
_items = msgspec.json.Decoder(list[msgspec.Raw])
_probe = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[msgspec.Raw])

# properties that say where a page is, and what of them Segment's page properties hold
_PAGE = {"$current_url": "url", "$pathname": "path", "$referrer": "referrer", "$title": "title"}
_CAMPAIGN = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name",
             "utm_term": "term", "utm_content": "content"}  # fmt: skip


def body_of(request: IngestRequest, limit: int) -> bytes:
    """The JSON text of the request: posthog-js gzips without saying so in a header
    (`?compression=gzip-js`), or sends base64 in a form's `data` field."""
    query = parse_qs(request.query)
    compression = (query.get("compression") or [""])[0]
    body = request.body
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded") or body.startswith(b"data="):
        form = parse_qs(body.decode("latin-1"))
        field = (form.get("data") or [""])[0]
        compression = (form.get("compression") or [compression])[0]
        if field.lstrip().startswith(("{", "[")):
            return field.encode("utf-8")
        try:
            body = base64.b64decode(field + "=" * (-len(field) % 4), validate=False)
        except (binascii.Error, ValueError):
            raise BadRequest("data: not valid base64", field="data") from None
        if compression == "base64" or not body.startswith(b"\x1f\x8b"):
            return body
    elif compression == "base64":
        try:
            return base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            raise BadRequest("body: not valid base64", field="body") from None
    if body.startswith(b"\x1f\x8b") or compression in ("gzip", "gzip-js"):
        inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        try:
            inflated = inflate.decompress(body, limit + 1)
        except zlib.error:
            raise BadRequest("body: not valid gzip data", field="body") from None
        if len(inflated) > limit or inflate.unconsumed_tail:
            raise PayloadTooLarge(f"body: must be at most {limit} bytes", field="body")
        return inflated
    return body


class PosthogDialect:
    name = "posthog"

    def parse(self, request: IngestRequest) -> Parsed:
        text = body_of(request, request.max_request_bytes)
        shape = decode_body(_probe, text) if text.strip() else None
        sent_at: datetime | None = None
        key = key_from_headers(request.headers)
        if isinstance(shape, list):
            raws, single, prefix = shape, False, "batch"
        elif isinstance(shape, dict) and "batch" in shape:
            envelope = decode_body(_envelope, text)
            if envelope.batch is None:
                raise BadRequest("batch: must be an array of events", field="batch")
            raws, single, prefix = envelope.batch, False, "batch"
            key = key or envelope.api_key or envelope.token
            sent_at = envelope.sent_at
        elif isinstance(shape, dict):
            raws, single, prefix = [msgspec.Raw(text)], True, ""
        else:
            raise BadRequest("body: must be an event, an array of events or {batch: [...]}",
                             field="body")  # fmt: skip
        if not single and not 1 <= len(raws) <= MAX_EVENTS:
            raise BadRequest(f"batch: must hold 1–{MAX_EVENTS} events (got {len(raws)})",
                             field="batch")  # fmt: skip
        parsed = Parsed(key=key, total=len(raws), single=single, prefix=prefix)
        for index, raw in enumerate(raws):
            capture = parsed.item(index, raw, _capture, request.max_event_bytes)
            if capture is not None:
                self._convert(parsed, index, capture, request, sent_at)
        return parsed

    def _convert(
        self,
        parsed: Parsed,
        index: int,
        c: Capture,
        request: IngestRequest,
        sent_at: datetime | None,
    ) -> None:
        where = parsed.field(index, "")
        if not c.event:
            return _reject(parsed, index, where, "event", "is required")
        properties = dict(c.properties or {})
        token = properties.pop("token", None) or c.api_key or c.token
        if parsed.key is None and isinstance(token, str):
            parsed.key = token
        inner = properties.pop("distinct_id", None)  # posthog-js sends it among them
        distinct = _id(c.distinct_id) or _id(inner)
        if not distinct:
            return _reject(parsed, index, where, "distinct_id", "is required")
        traits = c.set or properties.pop("$set", None)
        once = c.set_once or properties.pop("$set_once", None)
        groups = properties.pop("$groups", None)
        name = c.event
        user, anonymous = _people(name, distinct, properties)
        context = _context(properties, request)
        if isinstance(groups, dict) and groups:
            context["groups"] = groups
        if isinstance(once, dict) and once:
            context["$set_once"] = once
        timestamp = c.timestamp
        if timestamp is None and c.offset is not None and 0 <= c.offset < 10**10:
            timestamp = (sent_at or request.received_at) - timedelta(milliseconds=c.offset)
        message = Message(
            userId=user, anonymousId=anonymous, properties=properties, context=context,
            messageId=c.uuid, timestamp=timestamp, sentAt=sent_at,
        )  # fmt: skip
        if isinstance(groups, dict) and groups:
            message.groupId = _id(next(iter(groups.values())))
        kind = _kind(name, message, properties, traits)
        if kind is None:
            return _reject(parsed, index, where, *_NEEDS[name])
        before = len(parsed.events)
        _SEGMENT.convert(parsed, index, message, kind, request, where)
        if len(parsed.events) > before and kind == "track" and (traits or once):
            # the person changes with the event: an identify beside it, as PostHog's would
            person = Message(
                userId=user, anonymousId=anonymous, traits=traits if isinstance(traits, dict)
                else None, context=context, messageId=f"{c.uuid}:set" if c.uuid else None,
                timestamp=timestamp, sentAt=sent_at,
            )  # fmt: skip
            _SEGMENT.convert(parsed, index, person, "identify", request, where)
        return None

    def respond(self, result: Result) -> Reply:
        refused = sorted(result.refused, key=lambda o: o.index)
        if result.single and refused:
            return Reply(refused[0].status, _problem(refused[0].reason, refused[0].message,
                                                     refused[0].field))  # fmt: skip
        body: dict[str, Any] = {"status": 1}
        if refused:
            body["rejected"] = len(refused)
            body["errors"] = [
                {"index": o.index, "code": o.reason, "message": o.message, "field": o.field}
                for o in refused
            ]
        return Reply(200, body)

    def refuse(self, error: RoostError, total: int) -> Reply:
        return Reply(error.status, _problem(error.code, error.message, error.field),
                     retry_headers(error))  # fmt: skip


def _problem(code: str, message: str, field: str | None) -> dict[str, Any]:
    """PostHog's error shape (and Roost's own fields beside it)."""
    kind = "validation_error" if code != "unauthorized" else "authentication_error"
    return {"type": kind, "code": code, "detail": message, "attr": field,
            "message": message, "field": field}  # fmt: skip


_NEEDS = {  # what an event of these names is refused without
    "$create_alias": ("properties.alias", "is required for $create_alias"),
    "$groupidentify": ("properties.$group_key", "is required for $groupidentify"),
}


def _people(name: str, distinct: str, properties: dict[str, Any]) -> tuple[str | None, str | None]:
    """(userId, anonymousId) by PostHog's rules: an `$identify` makes distinct_id the user and
    `$anon_distinct_id` the anonymous id it was; an id PostHog marks anonymous
    (`$is_identified: false`, or the `$device_id` itself) is one; a server library's is a user's."""
    device = _id(properties.get("$device_id"))
    if name == "$identify":
        before = _id(properties.get("$anon_distinct_id")) or device
        return distinct, before if before != distinct else None
    if properties.get("$is_identified") is False or device == distinct:
        return None, distinct
    return distinct, device if device != distinct else None


def _kind(
    name: str,
    message: Message,
    properties: dict[str, Any],
    traits: Any,
) -> str | None:
    """The Segment call an event is, with the message filled in for it (None: it lacks what
    its kind needs)."""
    if name == "$pageview":
        for source, target in _PAGE.items():
            value = properties.get(source)
            if value is not None and value != "$direct":
                properties.setdefault(target, value)
        return "page"
    if name == "$screen":
        message.name = _text(properties.get("$screen_name"))
        return "screen"
    if name in ("$identify", "$set", "$set_once"):
        message.traits = traits if isinstance(traits, dict) else {}
        return "identify"
    if name == "$groupidentify":
        key = _id(properties.get("$group_key"))
        if not key:
            return None
        message.groupId = key
        group_set = properties.get("$group_set")
        message.traits = {**(group_set if isinstance(group_set, dict) else {}),
                          "group_type": properties.get("$group_type")}  # fmt: skip
        return "group"
    if name == "$create_alias":
        alias = _id(properties.get("alias"))
        if not alias:
            return None
        # distinct_id is the id in use, `alias` the one to take on: one person from now on
        message.previousId, message.userId = message.userId or message.anonymousId, alias
        message.anonymousId = None
        return "alias"
    message.event = name
    return "track"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _context(properties: dict[str, Any], request: IngestRequest) -> dict[str, Any]:
    """Segment's context from PostHog's `$` properties (kept as properties too)."""
    context: dict[str, Any] = {}
    lib = properties.get("$lib")
    if isinstance(lib, str):
        context["library"] = _present(name=lib, version=properties.get("$lib_version"))
    page = {target: properties[source] for source, target in _PAGE.items()
            if isinstance(properties.get(source), str) and properties[source] != "$direct"}  # fmt: skip
    if page:
        context["page"] = page
    campaign = {target: properties[source] for source, target in _CAMPAIGN.items()
                if isinstance(properties.get(source), str)}  # fmt: skip
    if campaign:
        context["campaign"] = campaign
    agent = properties.get("$raw_user_agent")
    if not isinstance(agent, str) and lib == "web":  # the browser's own request says it
        agent = request.headers.get("user-agent")
    if isinstance(agent, str):
        context["userAgent"] = agent
    if isinstance(os := properties.get("$os"), str):
        context["os"] = _present(name=os, version=properties.get("$os_version"))
    if isinstance(device := properties.get("$device_type"), str):
        context["device"] = {"type": device.lower()}
    if isinstance(session := properties.get("$session_id"), str):
        context["sessionId"] = session
    if isinstance(locale := properties.get("$locale"), str):
        context["locale"] = locale
    if isinstance(zone := properties.get("$timezone"), str):
        context["timezone"] = zone
    return context


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _reject(parsed: Parsed, index: int, where: str, field: str, rule: str) -> None:
    path = f"{where}{field}" if where else field
    parsed.reject(index, Reason.INVALID_REQUEST, f"{path}: {rule}", path)
