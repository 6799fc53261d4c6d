"""Authorize: the key exists, is live, is a write key, owns the site, may send each type."""

from __future__ import annotations

from roost.errors import WRONG_KIND, BadRequest, Unauthorized
from roost.model import Event, Reason
from roost.pipeline.batch import Batch, Refusal, Verdict

RESTORE_KIND = (
    "Restoring Roost's own export writes stored events as they were (past the tracking plan, "
    "consent and transformations): it takes an admin key."
)


class Authorize:
    def __init__(self, kind: str = "write") -> None:
        self.kind = kind  # "admin" for restores: a write key may sit in any browser

    def __call__(self, batch: Batch) -> None:
        key = batch.key
        if key is None:
            raise Unauthorized("missing or unknown key")
        if key.revoked_at is not None:
            raise Unauthorized("this key has been revoked")
        if key.kind != self.kind:
            raise Unauthorized(WRONG_KIND if self.kind == "write" else RESTORE_KIND)
        site = batch.parsed.site
        if site is not None and site != key.project_slug:
            raise BadRequest(
                f"site_id: {site[:100]!r} is not a site this key may write to",
                field="site_id",
                code="invalid_site_id",
            )
        for event in batch.events:
            event.project_id = key.project_id
        allowed = key.allowed_types
        if allowed is None:
            return

        def verdict(index: int, event: Event) -> Verdict:
            if event.type in allowed:
                return None
            field = batch.field(index, "type")
            message = f"{field}: this key may not send {event.type} events (allowed: {', '.join(allowed)})"
            return Refusal(Reason.FORBIDDEN, message, field, 403)

        batch.keep(verdict)
