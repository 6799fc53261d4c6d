"""Umami's event endpoint, `POST /api/send`, so Umami's tracker script works against Roost
unchanged (docs/wire-contracts.md, dialect 7).

`{"type": "event", "payload": {website, hostname, url, referrer, title, screen, language,
name?, data?}}`. No key: the project is the one whose `site.website_id` is `website`, or whose
slug it is (storage/metadata/sites.py). A payload without `name` is a pageview, with one a
custom event whose `data` are its properties. The script sends `url` as the page's path and
query, `title` and `url` URI-encoded. Only pages and custom events come this way: an
`identify` is refused. The privacy rules are the web dialect's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec

from roost.dialects.base import IngestRequest, Parsed, Reply, Result, decode_single
from roost.dialects.web import MAX_EVENT_NAME, check_url, tracker_event
from roost.errors import BadRequest, RoostError

PATHS = ("/api/send",)
MAX_DATA = 50  # properties of a custom event


class Payload(msgspec.Struct):
    website: str | None = None
    hostname: str | None = None
    url: str | None = None
    referrer: str | None = None
    title: str | None = None
    screen: str | None = None
    language: str | None = None
    name: str | None = None
    data: dict[str, Any] | None = None
    tag: str | None = None


class Body(msgspec.Struct):
    type: str | None = None
    payload: Payload | None = None


_decode = msgspec.json.Decoder(Body)


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def _page_url(p: Payload) -> str:
    url = unquote(p.url or "")
    if "://" in url:
        return url
    if not p.hostname:
        raise _bad("payload.hostname", "is required when payload.url is a path")
    if not url.startswith("/"):
        url = "/" + url
    return f"https://{p.hostname}{url}"


class UmamiDialect:
    name = "umami"

    def parse(self, request: IngestRequest) -> Parsed:
        body = decode_single(_decode, request.body)
        if body.type != "event":
            raise _bad("type", f"must be event (got {body.type!r}): only pages and custom "
                               "events are taken without a key")  # fmt: skip
        p = body.payload
        if p is None:
            raise _bad("payload", "is required")
        if not p.website:
            raise _bad("payload.website", "is required: the website id")
        if not p.url:
            raise _bad("payload.url", "is required")
        url = _page_url(p)
        check_url(url, "payload.url")
        referrer = unquote(p.referrer) if p.referrer else None
        if referrer:
            check_url(referrer, "payload.referrer")
        if p.name is not None and not 0 < len(p.name) <= MAX_EVENT_NAME:
            raise _bad("payload.name", f"must be 1–{MAX_EVENT_NAME} characters")
        data = p.data or {}
        if len(data) > MAX_DATA:
            raise _bad("payload.data", f"at most {MAX_DATA} properties (got {len(data)})")
        properties: dict[str, Any] = dict(data)
        if p.title:
            properties.setdefault("title", unquote(p.title))
        if p.tag:
            properties.setdefault("tag", p.tag)
        parsed = Parsed(key=None, total=1, single=True)
        parsed.named = ("website", p.website, "payload.website")
        context = {"locale": p.language, "screen": p.screen}
        return tracker_event(parsed, request, self.name, p.name, url, referrer, properties,
                             {k: v for k, v in context.items() if v})  # fmt: skip

    def respond(self, result: Result) -> Reply:
        refused = result.refused
        if refused:
            o = refused[0]
            return Reply(o.status, _error(o.reason, o.message, o.field))
        return Reply(200, {"ok": True})  # the script keeps the text and sends it back: unused

    def refuse(self, error: RoostError, total: int) -> Reply:
        return Reply(error.status, _error(error.code, error.message, error.field))


def _error(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}
