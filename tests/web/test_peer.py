"""Which peers' forwarding headers Roost believes (web/peer.py)."""

from __future__ import annotations

from typing import Any

from roost.web.peer import client_ip, with_forwarded_scheme


def scope(client: str, proto: bytes) -> dict[str, Any]:
    return {
        "scheme": "http",
        "client": (client, 5000),
        "headers": [(b"host", b"x"), (b"x-forwarded-proto", proto)],
    }


def test_a_scheme_is_taken_from_a_local_or_trusted_proxy_only() -> None:
    assert with_forwarded_scheme(scope("127.0.0.1", b"https"), False)["scheme"] == "https"
    assert with_forwarded_scheme(scope("::1", b"HTTPS, http"), False)["scheme"] == "https"
    assert with_forwarded_scheme(scope("203.0.113.9", b"https"), False)["scheme"] == "http"
    assert with_forwarded_scheme(scope("203.0.113.9", b"https"), True)["scheme"] == "https"
    assert with_forwarded_scheme(scope("127.0.0.1", b"gopher"), True)["scheme"] == "http"
    assert with_forwarded_scheme({"scheme": "http", "client": None, "headers": [
        (b"x-forwarded-proto", b"https")]}, False)["scheme"] == "http"  # fmt: skip


def test_an_address_is_taken_from_x_forwarded_for_only_when_trusted() -> None:
    headers = {"x-forwarded-for": "198.51.100.7, 10.0.0.1"}
    peer = {"client": ("127.0.0.1", 5000)}
    assert client_ip(peer, headers, False) == "127.0.0.1"
    assert client_ip(peer, headers, True) == "198.51.100.7"
