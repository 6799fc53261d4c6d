"""Consent: Segment's consent spec, `context.consent.categoryPreferences`.

`granted` answers whether an event consents to a set of categories; forwarders ask it for
each destination's categories (an event that carries no consent preferences at all was sent
by a client that does not collect consent, and goes everywhere, as in Segment). A project
may also require consent to categories for storage: an event that does not grant them all
(or carries no preferences) is stored with its properties and traits stripped, or refused,
as the project's setting says. The rule applies to the dialects that can carry consent
(Segment's) unless the project names others: a game, web or free-form event has nowhere to
put it, and would otherwise always count as refusing.

A refused event never reaches the tracking plan; a stripped one is checked by it as it was
sent, and stripped after (`ConsentStrip`), so consent is never reported as a contract
violation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from roost.model import Event, Reason
from roost.pipeline.batch import Batch, Refusal, Verdict
from roost.pipeline.cache import PerProject

ACTIONS = ("strip", "refuse")
DIALECTS = ("segment", "web", "game", "freeform", "posthog", "plausible", "umami")
CARRY_CONSENT = ("segment",)
STRIP = "consent_strip"  # the note naming the events ConsentStrip empties


@dataclass(frozen=True)
class StorageConsent:
    categories: tuple[str, ...] = ()
    action: str = "strip"
    dialects: tuple[str, ...] = CARRY_CONSENT


def preferences(context: dict[str, Any]) -> dict[str, Any] | None:
    consent = context.get("consent")
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    return prefs if isinstance(prefs, dict) else None


def granted(context: dict[str, Any], categories: Sequence[str], required: bool = False) -> bool:
    """True if the event's preferences grant every category (or, unless required, it has none)."""
    if not categories:
        return True
    prefs = preferences(context)
    if prefs is None:
        return not required
    return all(prefs.get(c) is True for c in categories)


class Consent:
    def __init__(
        self,
        setting_for: Callable[[int], StorageConsent],
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.setting = PerProject(setting_for, ttl, clock)

    def __call__(self, batch: Batch) -> None:
        setting = self.setting(batch.project_key.project_id)
        if not setting.categories or batch.dialect not in setting.dialects:
            return
        wanted = ", ".join(setting.categories)
        stripped: list[int] = []
        to_strip: set[int] = set()

        def verdict(index: int, event: Event) -> Verdict:
            if granted(event.context, setting.categories, required=True):
                return None
            if setting.action == "refuse":
                field = batch.field(index, "context.consent.categoryPreferences")
                return Refusal(
                    Reason.CONSENT_REQUIRED,
                    f"{field}: this project stores only events consenting to {wanted}",
                    field,
                    422,
                )
            to_strip.add(id(event))
            stripped.append(index)
            return None

        batch.keep(verdict)
        if stripped:
            batch.notes["consent_stripped"] = stripped
            batch.notes[STRIP] = to_strip


class ConsentStrip:
    """Empties the properties and traits of the events Consent marked, once the tracking
    plan has seen them as they were sent."""

    def __call__(self, batch: Batch) -> None:
        marked = batch.notes.get(STRIP)
        if not marked:
            return
        for event in batch.events:
            if id(event) in marked:
                event.properties = {}
                event.traits = {}
