"""Reading a request body within the size limit, gzip included, never all at once.

The limit applies to the bytes on the wire while they are read (a liar's Content-Length does
not help it) and again to the decompressed bytes, so a small gzip bomb is refused too. It
works on the bare ASGI `receive`, so the ingest path needs no request object.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from roost.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body: must be at most {limit} bytes", field="body")


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("body: the client went away before sending it all", field="body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding: {encoding!r} is not supported (use gzip or none)",
            field="Content-Encoding",
        )
    gzip = encoding != "deflate"
    out: list[bytes] = []
    size = 0
    rest = body
    while True:  # a gzip body may hold several members (RFC 1952), one after another
        decompressor = zlib.decompressobj(32 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        try:
            data = decompressor.decompress(rest, limit + 1 - size)
        except zlib.error:
            raise BadRequest(f"body: not valid {encoding} data", field="body") from None
        size += len(data)
        if size > limit or decompressor.unconsumed_tail:
            raise too_large(limit)
        if not decompressor.eof:
            raise BadRequest(f"body: truncated {encoding} data", field="body")
        out.append(data)
        rest = decompressor.unused_data
        if not rest:
            return out[0] if len(out) == 1 else b"".join(out)
        if not gzip or not rest.startswith(b"\x1f\x8b"):
            raise BadRequest(
                f"body: {len(rest)} bytes of garbage after the {encoding} data", field="body"
            )
