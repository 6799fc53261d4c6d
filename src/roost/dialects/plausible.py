"""Plausible's event endpoint, `POST /api/event`, so its tracker script and plausible-tracker
work against Roost unchanged (docs/wire-contracts.md, dialect 6).

No key: the project is the one whose `site.domains` holds `d` (`domain`), or whose slug it is
(storage/metadata/sites.py). `n` is the event name (`pageview` is a page), `u` the page's URL,
`r` the referrer, `p` the props (an object, or one as JSON text), `revenue` an amount and a
currency. The privacy rules are the web dialect's: the IP is used for the country and the
cookieless visitor hash, then dropped.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec

from roost.dialects import fields
from roost.dialects.base import (
    MAX_DEPTH,
    IngestRequest,
    Parsed,
    Reply,
    Result,
    decode_single,
    json_kind,
    too_deep,
)
from roost.dialects.web import MAX_EVENT_NAME, check_url, tracker_event
from roost.errors import BadRequest, RoostError

PATHS = ("/api/event",)
MAX_PROPS = 30  # Plausible's own bounds on custom properties
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000


class PlausibleEvent(msgspec.Struct):
    n: str | None = None
    name: str | None = None
    u: str | None = None
    url: str | None = None
    d: str | None = None
    domain: str | None = None
    r: str | None = None
    referrer: str | None = None
    p: dict[str, Any] | str | None = None
    props: dict[str, Any] | str | None = None
    revenue: dict[str, Any] | None = None
    dollar: dict[str, Any] | None = msgspec.field(default=None, name="$")  # revenue, shorter
    w: int | None = None  # the screen width: not kept (the user agent says the device)
    h: int | None = None  # hash-based routing: the URL's fragment is its path
    i: bool | None = None  # interactive: not kept


_decode = msgspec.json.Decoder(PlausibleEvent)


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def props_of(raw: dict[str, Any] | str | None, field: str) -> dict[str, Any]:
    """Custom properties: an object, or the JSON text of one (the tracker sends that)."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        if too_deep(raw.encode()):  # JSON inside a string: its nesting is bounded here
            raise _bad(field, f"nested more than {MAX_DEPTH} levels deep")
        try:
            raw = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise _bad(field, "must be an object or the JSON text of one") from None
    if not isinstance(raw, dict):
        raise _bad(field, f"must be an object (got {json_kind(raw)})")
    if len(raw) > MAX_PROPS:
        raise _bad(field, f"at most {MAX_PROPS} properties (got {len(raw)})")
    for key, value in raw.items():
        if not 0 < len(key) <= MAX_PROP_KEY:
            raise _bad(field, f"property names must be 1–{MAX_PROP_KEY} characters")
        if value is None or not isinstance(value, str | int | float | bool):
            raise _bad(
                f"{field}.{key}", f"must be a string, number or boolean (got {json_kind(value)})"
            )
        if isinstance(value, str) and len(value) > MAX_PROP_VALUE:
            raise _bad(f"{field}.{key}", f"must be at most {MAX_PROP_VALUE} characters")
    return raw


def _revenue(raw: dict[str, Any], properties: dict[str, Any]) -> float:
    currency, amount = raw.get("currency"), raw.get("amount")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise _bad("revenue.currency", "must be a three-letter ISO 4217 code such as EUR")
    if isinstance(amount, str) and len(amount) <= 40:
        with contextlib.suppress(ValueError):
            amount = float(amount)
    value = fields.number(amount)
    if value is None:
        raise _bad("revenue.amount", "must be a number (or a number as text)")
    properties["revenue"] = value
    properties["currency"] = currency.upper()
    return value


class PlausibleDialect:
    name = "plausible"

    def parse(self, request: IngestRequest) -> Parsed:
        body = decode_single(_decode, request.body)
        name = body.n or body.name
        if not name or len(name) > MAX_EVENT_NAME:
            raise _bad("name", f"is required, 1–{MAX_EVENT_NAME} characters")
        domain = body.d or body.domain
        if not domain:
            raise _bad("domain", "is required: the site's domain")
        url = body.u or body.url
        if not url:
            raise _bad("url", "is required")
        check_url(url, "url")
        referrer = body.r or body.referrer
        if referrer:
            check_url(referrer, "referrer")
        properties = dict(props_of(body.p if body.p is not None else body.props, "props"))
        revenue = body.revenue or body.dollar
        value = _revenue(revenue, properties) if revenue else None
        parsed = Parsed(key=None, total=1, single=True)
        # a comma-separated list sends one event to several sites: it lands in the first
        parsed.named = ("domain", domain.split(",")[0].strip(), "domain")
        if body.h and "#" in url:  # hash routing: the fragment is where the visitor is
            properties.setdefault("hash", url.split("#", 1)[1])
        custom = None if name == "pageview" else name
        return tracker_event(parsed, request, self.name, custom, url, referrer, properties,
                             value=value)  # fmt: skip

    def respond(self, result: Result) -> Reply:
        refused = result.refused
        if refused:
            o = refused[0]
            return Reply(o.status, _errors(o.reason, o.message, o.field))
        return Reply(202, "ok")

    def refuse(self, error: RoostError, total: int) -> Reply:
        return Reply(error.status, _errors(error.code, error.message, error.field))


def _errors(code: str, message: str, field: str | None) -> dict[str, Any]:
    """Plausible's shape (`errors` by field) with Roost's `error` beside it."""
    return {
        "errors": {field or "request": [message]},
        "error": {"code": code, "message": message, "field": field},
    }
