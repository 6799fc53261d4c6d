"""Who is at the other end of a request: the client's address, or with `trust_forwarded_for`
(Roost behind a proxy of its own) the first address of X-Forwarded-For; and whether it came
over HTTPS, which a local proxy (or a trusted one) says in X-Forwarded-Proto.

Roost reads these headers itself: uvicorn's own proxy-header handling is off (it believed
X-Forwarded-For from any loopback peer, whatever `trust_forwarded_for` said)."""

from __future__ import annotations

import ipaddress
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


def _loopback(scope: Mapping[str, Any]) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


def with_forwarded_scheme(scope: dict[str, Any], trust_forwarded_for: bool) -> dict[str, Any]:
    """The scope with the scheme X-Forwarded-Proto names (http or https), when a proxy on this
    machine or, with `trust_forwarded_for`, any peer sent it; else the scope as it came."""
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-proto":
            scheme = value.decode("latin-1").split(",")[0].strip().lower()
            changed = scheme in ("http", "https") and scheme != scope.get("scheme")
            if changed and (trust_forwarded_for or _loopback(scope)):
                return {**scope, "scheme": scheme}
            break
    return scope
