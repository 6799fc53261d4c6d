"""What a forwarder sends (the first of its three parts; delivery.py is how, forwarder.py the
loop and its cursor): the events its destination takes — project, call type, event name,
consent categories and the event's own `integrations` — each as a Segment-shaped payload
with the destination's property mapping applied."""

from __future__ import annotations

from typing import Any

import msgspec

from roost.destinations.payload import to_segment
from roost.model import NAMED_TYPES, Event
from roost.pipeline.consent import granted
from roost.storage.metadata.destinations import Destination


class Outbound:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    def as_sent(self, event: Event) -> Event:
        """The event as this destination takes it: an audience's entry or exit as an
        identify setting its trait (`audiences: identify`), as Segment offers."""
        if event.dialect != "audience" or self.destination.audiences != "identify":
            return event
        key = event.properties.get("audience_key")
        trait = {str(key): event.properties.get(str(key))}
        return msgspec.structs.replace(event, type="identify", event=None, traits=trait,
                                       properties={})  # fmt: skip

    def takes(self, event: Event) -> bool:
        return self.refusal(event) is None

    def refusal(self, event: Event) -> str | None:
        """Which of the destination's rules leaves the event out (None: it takes it)."""
        event = self.as_sent(event)
        d = self.destination
        if event.project_id != d.project_id:
            return "project"
        if d.types is not None and event.type not in d.types:
            return "types"
        if d.events is not None and event.type in NAMED_TYPES and event.event not in d.events:
            return "events"
        if not granted(event.context, d.consent):
            return "consent"
        return None

    def opted_in(self, event: Event) -> bool:
        """Segment's `integrations` rules: the destination's own name (case-sensitive) decides
        when present; otherwise `All` does, and without it everything is on."""
        chosen = event.integrations
        if not chosen:
            return True
        own = chosen.get(self.destination.name)
        if own is not None:
            return own is not False
        return chosen.get("All") is not False

    def payload(self, event: Event) -> dict[str, Any]:
        event = self.as_sent(event)
        out = to_segment(event)
        if self.destination.mapping:
            out["properties"] = dict(out.get("properties") or {})
            out["traits"] = dict(out.get("traits") or {})
            for source, target in self.destination.mapping.items():
                _move(out, source, target)
            for part in ("properties", "traits"):
                if not out[part] and part not in to_segment(event):
                    del out[part]
        return out


def _move(event: dict[str, Any], source: str, target: str) -> None:
    """Move one (dotted) field of the Segment-shaped event; bare names are properties."""

    def parts(path: str) -> list[str]:
        split = path.split(".")
        return split if len(split) > 1 and split[0] in event else ["properties", *split]

    src, dst = parts(source), parts(target)
    holder: Any = event
    for part in src[:-1]:
        holder = holder.get(part) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or src[-1] not in holder:
        return
    value = holder.pop(src[-1])
    holder = event
    for part in dst[:-1]:
        inner = holder.get(part)
        if not isinstance(inner, dict):
            inner = holder[part] = {}
        holder = inner
    holder[dst[-1]] = value
