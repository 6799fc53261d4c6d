"""An event as destinations receive it: Segment's spec, so any Segment-speaking tool takes it.

Roost's own columns a Segment event has no place for (a game event's category and value, the
enrichment) travel in `context.roost`, so a second Roost or a warehouse keeps them.
"""

from __future__ import annotations

from typing import Any

from roost.model import Event

EXTRA = (
    "category", "value", "dim1", "dim2", "dim3", "source", "country", "browser", "os",
    "device", "bot", "visitor", "build", "session_id", "dialect",
)  # fmt: skip


def to_segment(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": event.type,
        "messageId": event.message_id,
        "timestamp": event.timestamp.isoformat(),
        "receivedAt": event.received_at.isoformat(),
    }
    for name, value in (
        ("userId", event.user_id),
        ("anonymousId", event.anonymous_id),
        ("groupId", event.group_id),
        ("previousId", event.previous_id),
    ):
        if value is not None:
            out[name] = value
    if event.type == "track":
        out["event"] = event.event
    elif event.type in ("page", "screen") and event.event:
        out["name"] = event.event
    if event.type in ("identify", "group"):
        out["traits"] = event.traits
    elif event.type != "alias":
        out["properties"] = event.properties
    context = dict(event.context)
    extra = {
        name: getattr(event, name) for name in EXTRA if getattr(event, name) not in (None, False)
    }
    if extra:
        roost = context.get("roost")
        context["roost"] = {**(roost if isinstance(roost, dict) else {}), **extra}
    out["context"] = context
    if event.integrations:
        out["integrations"] = event.integrations
    return out
