"""Dialect 3: web analytics, `POST /api/v1/events/pageview` and `/api/v1/events/custom`.

A pageview becomes a `page` event, a custom event a `track`; `site_id` is the project's
slug and must be the key's own project. Errors take the shape
`{"error": {"code", "message", "field"}}`.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import msgspec

from roost.dialects.base import (
    IngestRequest,
    Parsed,
    Reply,
    Result,
    decode_single,
    json_kind,
    key_from_headers,
    over_size,
    retry_headers,
)
from roost.dialects.sender import SERVER, sent_by_a_program
from roost.errors import BadRequest, RoostError
from roost.model import Event, Reason

MAX_URL = 2048
MAX_EVENT_NAME = 200
MAX_PROPS = 10
MAX_PROP_KEY = 50


class Pageview(msgspec.Struct):
    site_id: str
    url: str
    referrer: str | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    # docs/wire-contracts.md: any write request may carry its key in the body; navigator.sendBeacon, which
    # the browser tracker uses, cannot set an Authorization header.
    writeKey: str | None = None


class Custom(msgspec.Struct):
    site_id: str
    event_name: str
    url: str
    referrer: str | None = None
    props: dict[str, Any] | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    writeKey: str | None = None


_pageview = msgspec.json.Decoder(Pageview)
_custom = msgspec.json.Decoder(Custom)


def check_url(url: str, field: str) -> None:
    if len(url) > MAX_URL:
        raise BadRequest(f"{field}: must be at most {MAX_URL} characters", field=field)
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    # any absolute URL: a web page's https://, a mobile app's app://example/screen (001)
    # (not a script: javascript:, data: and vbscript: are never a page anyone was on)
    if (
        parts is None
        or not parts.scheme
        or parts.scheme in ("javascript", "data", "vbscript")
        or not (parts.netloc or parts.path)
    ):
        raise BadRequest(
            f"{field}: must be an absolute URL with a scheme (https://…, app://…)", field=field
        )


def check_props(props: dict[str, Any]) -> None:
    if len(props) > MAX_PROPS:
        raise BadRequest(
            f"props: at most {MAX_PROPS} keys (got {len(props)})",
            field="props",
            code="invalid_props",
        )
    for key, value in props.items():
        if not 0 < len(key) <= MAX_PROP_KEY:
            raise BadRequest(
                f"props: keys must be 1–{MAX_PROP_KEY} characters (got {len(key)})",
                field=f"props.{key[:MAX_PROP_KEY]}",
                code="invalid_props",
            )
        if value is None or not isinstance(value, str | int | float | bool):
            raise BadRequest(
                f"props.{key}: must be a string, number or boolean (got {json_kind(value)})",
                field=f"props.{key}",
                code="invalid_props",
            )


def tracker_event(
    parsed: Parsed,
    request: IngestRequest,
    dialect: str,
    name: str | None,
    url: str,
    referrer: str | None,
    properties: dict[str, Any],
    context: dict[str, Any] | None = None,
    value: float | None = None,
) -> Parsed:
    """A browser tracker's one event (Plausible's, Umami's): a page when `name` is None,
    else a custom event; the request's own agent says the browser unless an HTTP library
    sent it (then it is the server's own call). Refused alone when it is too large."""
    if over_size(request.body, request.max_event_bytes):
        rule = f"event must be at most {request.max_event_bytes} bytes"
        parsed.reject(0, Reason.TOO_LARGE, rule, None, 413)
        return parsed
    agent = request.headers.get("user-agent")
    server_side = sent_by_a_program(agent)
    seen = {"userAgent": agent} if agent and not server_side else {}
    parsed.add(
        0,
        Event(
            message_id=parsed.new_id(), project_id=0, dialect=dialect,
            type="track" if name else "page", event=name or None,
            timestamp=request.received_at, received_at=request.received_at,
            url=url, referrer=referrer or None, properties=properties,
            context={**seen, **(context or {})}, device=SERVER if server_side else None,
            value=value, ip=request.client_ip,
        ),
    )  # fmt: skip
    return parsed


class WebDialect:
    name = "web"

    def parse(self, request: IngestRequest) -> Parsed:
        custom = request.path.rstrip("/").endswith("/custom")
        decoder: msgspec.json.Decoder[Any] = _custom if custom else _pageview
        try:
            body: Pageview | Custom = decode_single(decoder, request.body)
        except BadRequest as error:
            field = error.field
            code = "invalid_props" if field and field.startswith("props") else "invalid_request"
            raise BadRequest(error.message, field=field, code=code) from None
        if not body.site_id:
            raise BadRequest("site_id: must not be empty", field="site_id")
        check_url(body.url, "url")
        if body.referrer:
            check_url(body.referrer, "referrer")
        properties: dict[str, Any] = {}
        name = None
        if isinstance(body, Custom):
            if not 0 < len(body.event_name) <= MAX_EVENT_NAME:
                raise BadRequest(
                    f"event_name: must be 1–{MAX_EVENT_NAME} characters (got {len(body.event_name)})",
                    field="event_name",
                )
            properties = body.props or {}
            check_props(properties)
            name = body.event_name
        parsed = Parsed(
            key=key_from_headers(request.headers) or body.writeKey,
            total=1,
            single=True,
            site=body.site_id,
        )
        if over_size(request.body, request.max_event_bytes):
            message = f"event must be at most {request.max_event_bytes} bytes"
            parsed.reject(0, Reason.TOO_LARGE, message, None, 413)
            return parsed
        user_agent = body.user_agent or request.headers.get("user-agent")
        server_side = not body.user_agent and sent_by_a_program(user_agent)
        if server_side:  # the document's server-side calls: the sender's agent, no visitor's
            user_agent = None
        parsed.add(
            0,
            Event(
                message_id="evt_" + secrets.token_hex(12),
                project_id=0,
                dialect=self.name,
                type="track" if name else "page",
                event=name,
                timestamp=request.received_at,
                received_at=request.received_at,
                url=body.url,
                referrer=body.referrer or None,
                properties=properties,
                context={"userAgent": user_agent} if user_agent else {},
                device=SERVER if server_side else None,
                ip=body.ip_address or request.client_ip,
            ),
        )
        return parsed

    def respond(self, result: Result) -> Reply:
        refused = result.refused
        if refused:
            o = refused[0]
            return Reply(
                o.status, {"error": {"code": o.reason, "message": o.message, "field": o.field}}
            )
        return Reply(
            201,
            {"success": True, "event_id": result.stored[0].message_id if result.stored else None},
        )

    def refuse(self, error: RoostError, total: int) -> Reply:
        body = {"error": {"code": error.code, "message": error.message, "field": error.field}}
        return Reply(error.status, body, retry_headers(error))
