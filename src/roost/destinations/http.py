"""POSTing a batch over HTTP, and what a failed POST means for the forwarder.

5xx, 408, 429 and network errors or timeouts are worth another try (after Retry-After when
the server gave one, in seconds or as an HTTP date); any other 4xx will fail the same way
again, so the batch goes to the dead letters at once.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from roost.destinations.base import DeliveryError, option

RETRYABLE = frozenset({408, 429})


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def headers_option(options: dict[str, Any]) -> dict[str, str]:
    headers = option(options, "headers", dict, {})
    for name, value in headers.items():
        if not isinstance(value, str):
            option({f"headers.{name}": value}, f"headers.{name}", str)
    return dict(headers)


def url_option(options: dict[str, Any], name: str = "url") -> str:
    url = option(options, name, str)
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        option({name: None}, name, str)  # refused with the option's name
    return str(url)


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"timed out: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    status = response.status_code
    if status < 300:
        return
    text = response.text[:200].strip()
    message = f"HTTP {status}" + (f": {text}" if text else "")
    if status >= 500 or status in RETRYABLE:
        raise DeliveryError(message, retry_after=retry_after(response.headers.get("retry-after")))
    raise DeliveryError(message, retry=False)
