"""Reading a request body within the size limit, gzip included, never all at once.

The limit applies to the bytes on the wire while they are read (a liar's Content-Length does
not help it) and again to the decompressed bytes, so a small gzip bomb is refused too.
"""

from __future__ import annotations

import zlib

from starlette.requests import ClientDisconnect, Request

from roost.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body: must be at most {limit} bytes", field="body")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("body: the client went away before sending it all", field="body") from None
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding: {encoding!r} is not supported (use gzip or none)",
            field="Content-Encoding",
        )
    decompressor = zlib.decompressobj(
        32 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    )
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise BadRequest(f"body: not valid {encoding} data", field="body") from None
    if len(data) > limit or decompressor.unconsumed_tail:
        raise _too_large(limit)
    if not decompressor.eof:
        raise BadRequest(f"body: truncated {encoding} data", field="body")
    return data
