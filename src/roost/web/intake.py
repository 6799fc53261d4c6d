"""An ingest request over HTTP: which dialect speaks it, its body within the limits, the
events the dialect finds in it, and the answer's HTTP — everything but the key, the pipeline
and the Log (web/ingest.py).

Pure of the server's state (no Runtime, no storage), so an ingest process of its own
(web/ingest_process.py) reads requests exactly as the server does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from roost.config import Settings
from roost.dialects import plausible, posthog, umami
from roost.dialects.base import Dialect, IngestRequest, Parsed, Reply
from roost.dialects.freeform import FreeformDialect
from roost.dialects.game import GameDialect, is_game_batch
from roost.dialects.game import body_limit as game_body_limit
from roost.dialects.plausible import PlausibleDialect
from roost.dialects.posthog import PosthogDialect
from roost.dialects.restore import RestoreDialect
from roost.dialects.segment import BATCH_LIMITS, SINGLE_PATHS, SegmentDialect
from roost.dialects.umami import UmamiDialect
from roost.dialects.web import WebDialect
from roost.errors import ClientError, PayloadTooLarge
from roost.web.body import Receive, read_body, too_large
from roost.web.peer import client_ip

SEGMENT = SegmentDialect()
GAME = GameDialect()
WEB = WebDialect()
FREEFORM = FreeformDialect()
RESTORE = RestoreDialect()
POSTHOG = PosthogDialect()
PLAUSIBLE = PlausibleDialect()
UMAMI = UmamiDialect()
CHOOSE = None  # /api/v1/events: a Segment event or a game batch, decided by the body
DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (SEGMENT, GAME, WEB, FREEFORM, RESTORE, POSTHOG, PLAUSIBLE, UMAMI)
}


def _paths() -> dict[str, Dialect | None]:
    table: dict[str, Dialect | None] = dict.fromkeys((*SINGLE_PATHS, *BATCH_LIMITS), SEGMENT)
    table["/api/v1/events"] = CHOOSE
    table["/api/v1/events/pageview"] = WEB
    table["/api/v1/events/custom"] = WEB
    table["/post"] = FREEFORM
    table["/api/v1/restore"] = RESTORE
    table.update(dict.fromkeys(posthog.PATHS, POSTHOG))
    table.update(dict.fromkeys(plausible.PATHS, PLAUSIBLE))
    table.update(dict.fromkeys(umami.PATHS, UMAMI))
    return {**table, **{path + "/": dialect for path, dialect in table.items()}}


PATHS = _paths()
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_encode = msgspec.json.Encoder().encode
CORS = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Authorization, Content-Type, Content-Encoding, X-Write-Key, X-Eventbunker-Write-Key",
    ),
    (b"access-control-max-age", b"86400"),
]


async def serve(
    take: Callable[[dict[str, str]], Awaitable[Reply]], scope: Mapping[str, Any], send: Send
) -> None:
    """An ingest path's HTTP: CORS, the method, and the answer `take(headers)` gives."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    origin = headers.get("origin", "*").encode("latin-1")
    method = scope["method"]
    if method == "OPTIONS":
        allow = CORS
        asked = headers.get("access-control-request-headers")
        if asked:
            allow = [*CORS[:1], (b"access-control-allow-headers", asked.encode("latin-1")), CORS[2]]
        await _send(send, 204, b"", [(b"access-control-allow-origin", origin), *allow])
        return
    if method != "POST":
        body = _encode(
            {"error": f"{method} is not allowed here; use POST", "code": "method_not_allowed"}
        )
        await _send(
            send, 405, body, [(b"content-type", b"application/json"), (b"allow", b"POST, OPTIONS")]
        )
        return
    reply = await take(headers)
    out = [
        (b"content-type", b"application/json"),
        (b"access-control-allow-origin", origin),
        *((k.lower().encode(), v.encode()) for k, v in reply.headers.items()),
    ]
    await _send(send, reply.status, _encode(reply.body), out)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """The answer, its length said (else uvicorn frames the tiny body as a chunk: ~2% of the
    single-event requests/s); a 204 has none (RFC 9110)."""
    if status != 204:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


BATCH_PATHS = frozenset(("/v1/batch", "/v1/import", "/v1/b", "/batch"))


class Read(NamedTuple):
    """A request as its dialect read it: its events, or the error that refuses it whole."""

    chosen: Dialect
    request: IngestRequest | None
    parsed: Parsed | None
    error: ClientError | None


async def read(
    settings: Settings,
    dialect: Dialect | None,
    scope: Mapping[str, Any],
    headers: Mapping[str, str],
    receive: Receive,
) -> Read:
    chosen: Dialect = dialect or SEGMENT
    try:
        limit = _body_limit(settings, dialect, scope["path"])
        try:
            body = await read_body(headers, receive, limit)
        except PayloadTooLarge:
            if dialect is None:  # too large to tell: the shape of the route's own document
                chosen = GAME
            raise
        if dialect is None and is_game_batch(body):
            chosen = GAME
        elif dialect is None and len(body) > settings.max_request_bytes:
            raise too_large(settings.max_request_bytes)  # not a game batch: a request's limit
        incoming = IngestRequest(
            path=scope["path"],
            headers=headers,
            body=body,
            client_ip=client_ip(scope, headers, settings.trust_forwarded_for),
            received_at=datetime.now(UTC),
            max_event_bytes=settings.max_event_bytes,
            max_clock_skew=timedelta(days=settings.max_clock_skew_days),
            query=scope.get("query_string", b"").decode("latin-1"),
            max_request_bytes=limit,
        )
        return Read(chosen, incoming, chosen.parse(incoming), None)
    except ClientError as error:
        return Read(chosen, None, None, error)


def _body_limit(settings: Settings, dialect: Dialect | None, path: str) -> int:
    """The request limit; on the batch paths the batch limit (RudderStack's libraries send
    batches of up to 4 MB); on the game route what a full batch may be (a body found not to
    be a batch is then held to the request limit)."""
    if dialect is None:
        return max(settings.max_request_bytes, game_body_limit(settings.max_event_bytes))
    if (path.rstrip("/") or path) in BATCH_PATHS:
        return max(settings.max_request_bytes, settings.max_batch_bytes)
    return settings.max_request_bytes
