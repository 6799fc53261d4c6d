"""Who is at the other end of a request: the client's address, or with `trust_forwarded_for`
(Roost behind a proxy of its own) the first address of X-Forwarded-For."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def client_ip(
    scope: Mapping[str, Any], headers: Mapping[str, str], trust_forwarded_for: bool
) -> str | None:
    if trust_forwarded_for:
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    client = scope.get("client")
    return str(client[0]) if client else None
