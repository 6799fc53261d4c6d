"""Webhook: POST each batch as JSON to a URL, signed with HMAC-SHA256.

Body: `{"batch": [events], "sentAt": ...}`. With a `secret`, the header
`X-Roost-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes, and
`X-Roost-Timestamp` the Unix time it was signed at, also covered by the signature
(`<timestamp>.<body>`) so a captured request cannot be replayed later as new.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from roost.destinations.base import no_other_options, option
from roost.destinations.http import headers_option, post, url_option


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class Webhook:
    def __init__(self, options: dict[str, Any]) -> None:
        no_other_options(options, {"url", "secret", "headers", "timeout"})
        self.url = url_option(options)
        self.secret: str | None = option(options, "secret", str, None)
        self.headers = headers_option(options)
        self.client = httpx.Client(timeout=float(option(options, "timeout", (int, float), 10.0)))

    def deliver(self, events: list[dict[str, Any]]) -> None:
        body = msgspec.json.encode({"batch": events, "sentAt": datetime.now(UTC).isoformat()})
        headers = {**self.headers, "Content-Type": "application/json"}
        if self.secret:
            stamp = str(int(time.time()))
            headers["X-Roost-Timestamp"] = stamp
            headers["X-Roost-Signature"] = signature(self.secret, stamp, body)
        post(self.client, self.url, body, headers)

    def close(self) -> None:
        self.client.close()
