"""Warnings before a schema rots: an event that introduces a new property, changes a
property's type, or pushes a project past a bound on distinct event names (an id in an event
name) or an event past one on distinct property names (a timestamp in a property name). The
warnings go back in the ingest answer (`warnings`); what is new is recorded
(storage/metadata/schema_seen.py) after the answer, off the event loop.

The last stage: it looks at what would be stored. In memory per process, loaded at start:
a warm process pays a dictionary lookup per property.
"""

from __future__ import annotations

from typing import Any

from roost.model import Event
from roost.pipeline.batch import Batch

NAMED = ("track", "page", "screen")
MAX_NAME = 255  # longer event or property names are not kept (nor warned about)
WITH_TRAITS = ("identify", "group")
TYPES: dict[type, str] = {str: "string", int: "number", float: "number", bool: "boolean",
                          dict: "object", list: "array"}  # fmt: skip


def label_of(event: Event) -> str:
    return event.event if event.type in NAMED and event.event else f"type:{event.type}"


class Drift:
    def __init__(self, max_event_names: int, max_properties: int) -> None:
        self.max_event_names = max_event_names
        self.max_properties = max_properties
        self.known: dict[int, dict[str, dict[str, str]]] = {}

    def load(self, rows: list[tuple[int, str, str, str]]) -> None:
        for project_id, label, name, kind in rows:
            properties = self.known.setdefault(project_id, {}).setdefault(label, {})
            if name:
                properties[name] = kind

    def __call__(self, batch: Batch) -> None:
        if not batch.events:
            return
        project = batch.project_key.project_id
        labels = self.known.setdefault(project, {})
        warnings: list[dict[str, Any]] = []
        new: list[tuple[int, str, str, str]] = []
        for index, event in zip(batch.indexes, batch.events, strict=True):
            label = label_of(event)
            if len(label) > MAX_NAME:  # not kept: memory stays bounded whatever names come
                continue
            known = labels.get(label)
            if known is None:
                where = batch.field(index, "event" if event.type in NAMED else "type")
                if len(labels) >= self.max_event_names:
                    warnings.append(_warn(index, where, "high_cardinality",
                        f"more than {self.max_event_names} distinct event names in this project: "
                        f"does {label[:100]!r} hold an id or a time?"))  # fmt: skip
                    continue
                known = labels[label] = {}
                new.append((project, label, "", "event"))
                warnings.append(_warn(index, where, "new_event", f"{label[:100]!r} is new"))
            payload = event.traits if event.type in WITH_TRAITS else event.properties
            part = "traits" if event.type in WITH_TRAITS else "properties"
            for name, value in payload.items():
                kind = TYPES.get(type(value))
                if kind is None or len(name) > MAX_NAME:  # null: no type to compare
                    continue
                had = known.get(name)
                if had == kind:
                    continue
                where = batch.field(index, f"{part}.{name}")
                if had is None:
                    if len(known) >= self.max_properties:
                        warnings.append(_warn(index, where, "high_cardinality",
                            f"{label[:100]!r} has more than {self.max_properties} distinct "
                            f"properties: does {name[:100]!r} hold an id or a time?"))  # fmt: skip
                        continue
                    known[name] = kind
                    new.append((project, label, name, kind))
                    warnings.append(_warn(index, where, "new_property",
                                          f"{name[:100]!r} is new for {label[:100]!r} ({kind})"))  # fmt: skip
                else:
                    warnings.append(_warn(index, where, "type_changed",
                                          f"{name[:100]!r} was a {had}, now a {kind}"))  # fmt: skip
        if warnings:
            batch.notes["warnings"] = warnings
        if new:
            batch.notes["seen"] = new


def _warn(index: int, field: str, code: str, message: str) -> dict[str, Any]:
    return {"index": index, "code": code, "field": field, "message": f"{field}: {message}"}
