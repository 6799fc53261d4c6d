"""JWT bearer tokens, which the web analytics document offers beside API keys: HS256,
signed with one of a project's jwt-secrets (`roost keys create --kind jwt-secret`), naming the
project in `site_id` and carrying an `exp`. A valid token writes as a write key of that project
would (its limits are the secret's); anything else is refused saying what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import jwt

from roost.errors import Unauthorized
from roost.model import Key

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30  # clocks of the signing server and Roost may differ a little


def looks_like_token(raw: str) -> bool:
    return raw.startswith("eyJ") and raw.count(".") == 2


def verify(raw: str, secrets_of: Callable[[str], list[tuple[Key, str]]]) -> tuple[Key, float]:
    """The key a token writes as, and when the token expires (epoch seconds)."""
    try:
        header = jwt.get_unverified_header(raw)
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise Unauthorized("Authorization: not a valid JWT") from None
    if header.get("alg") != ALGORITHM:
        raise Unauthorized(f"Authorization: a token must be signed with {ALGORITHM}")
    site = claims.get("site_id")
    if not isinstance(site, str) or not site:
        raise Unauthorized("Authorization: the token needs a site_id claim (the project)")
    found = secrets_of(site)
    kid = header.get("kid")
    if kid is not None:
        found = [(k, s) for k, s in found if k.id == kid]
    for key, secret in found:
        try:
            checked = jwt.decode(
                raw,
                secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "site_id"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Authorization: the token has expired (exp)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"Authorization: the token needs an {exc.claim} claim") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"Authorization: {exc}") from None
        return replace(key, kind="write"), float(checked["exp"])
    raise Unauthorized(
        f"Authorization: the token's signature matches no live jwt-secret of site {site[:100]!r}"
    )
