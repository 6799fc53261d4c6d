"""Segment-compatible HTTP: forward batches to any endpoint speaking docs/wire-contracts.md's dialect 1.

POSTs `{"batch": [...], "sentAt", "writeKey"}` to `<url>/v1/batch` with Basic auth, as
Segment's own libraries do, so one Roost can feed another (messageIds are kept, so the
target deduplicates a batch sent twice) or a hosted service.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import msgspec

from roost.destinations.base import no_other_options, option
from roost.destinations.http import headers_option, post, url_option


class SegmentHTTP:
    def __init__(self, options: dict[str, Any]) -> None:
        no_other_options(options, {"url", "write_key", "headers", "timeout"})
        self.url = url_option(options).rstrip("/")
        if not self.url.endswith("/v1/batch"):
            self.url += "/v1/batch"
        self.write_key: str = option(options, "write_key", str)
        token = base64.b64encode(f"{self.write_key}:".encode()).decode()
        self.headers = {
            **headers_option(options),
            "Authorization": f"Basic {token}",
            "Content-Type": "application/json",
        }
        self.client = httpx.Client(timeout=float(option(options, "timeout", (int, float), 10.0)))

    def deliver(self, events: list[dict[str, Any]]) -> None:
        body = msgspec.json.encode({"batch": events, "writeKey": self.write_key})
        post(self.client, self.url, body, self.headers)

    def close(self) -> None:
        self.client.close()
