"""Warnings before a schema rots: an event that introduces a new property, changes a
property's type, pushes a string property past a bound on its distinct values (an estimate),
or pushes a project past a bound on distinct event names (an id in an event name) or an event
past one on distinct property names (a timestamp in a property name). The warnings go back in
the ingest answer (`warnings`); what is new (`seen`) and the first time of each other warning
in this process (`noticed`) are recorded (storage/metadata/schema_seen.py) after the answer,
off the event loop, for the weekly digest and the tracking plan page.

The last stage: it looks at what would be stored. In memory per process, loaded at start:
a warm process pays a dictionary lookup per property and, per string value, a hash and a
comparison.

Distinct values are estimated with a k-minimum-values sketch (the SKETCH smallest 64-bit
hashes of the values seen: with all of them kept the count is exact, beyond it the estimate
is (SKETCH − 1) · 2⁶⁴ / the largest kept, a relative standard error of about
1/√(SKETCH − 2) ≈ 13%). Python's string hash is per process, so each process estimates what it
saw; a property once past the bound is recorded and not estimated again.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable
from typing import Any

from roost.model import NAMED_TYPES, label_of
from roost.pipeline.batch import Batch

MAX_NAME = 255  # longer event or property names are not kept (nor warned about)
WITH_TRAITS = ("identify", "group")
TYPES: dict[type, str] = {str: "string", int: "number", float: "number", bool: "boolean",
                          dict: "object", list: "array"}  # fmt: skip


SKETCH = 64
MAX_SKETCHES = 20_000  # properties estimated per process (~1 KB each); more are not
HASHES = 2**64
PAST: list[int] = []  # a property past the bound on values (never filled): not estimated again
Noticed = tuple[int, str, str, str, str]  # project, label, property, code, detail


def estimate(sketch: list[int]) -> float:
    """Distinct values from a k-minimum-values sketch (sorted hashes)."""
    if len(sketch) < SKETCH:
        return float(len(sketch))
    return (SKETCH - 1) * HASHES / (sketch[-1] + 1)


def observe(sketch: list[int], value: str) -> bool:
    """Add a value's hash to a k-minimum-values sketch; whether the sketch changed (most
    values, once it is full, leave it as it is: a comparison)."""
    h = hash(value) % HASHES
    if len(sketch) < SKETCH:
        if h in sketch:
            return False
        insort(sketch, h)
        return True
    if h >= sketch[-1] or h in sketch:
        return False
    insort(sketch, h)
    sketch.pop()
    return True


class Drift:
    def __init__(self, max_event_names: int, max_properties: int, max_values: int = 10_000) -> None:
        self.max_event_names = max_event_names
        self.max_properties = max_properties
        self.max_values = max_values
        self.known: dict[int, dict[str, dict[str, str]]] = {}
        # project → label → property → its sketch, or PAST
        self.values: dict[int, dict[str, dict[str, list[int]]]] = {}
        self.sketches = 0
        self.noticed: set[Noticed] = set()  # already recorded (from the store, or by this process)

    def load(
        self, rows: Iterable[tuple[int, str, str, str]], noticed: Iterable[Noticed] = ()
    ) -> None:
        for project_id, label, name, kind in rows:
            properties = self.known.setdefault(project_id, {}).setdefault(label, {})
            if name:
                properties[name] = kind
        for item in noticed:
            self.noticed.add(item)
            project_id, label, name, code, _ = item
            if code == "many_values":
                self.values.setdefault(project_id, {}).setdefault(label, {})[name] = PAST

    def distinct(self, project_id: int) -> dict[tuple[str, str], int | None]:
        """(label, property) → this process's estimate of its distinct string values
        (None: past the bound)."""
        return {
            (label, name): None if sketch is PAST else round(estimate(sketch))
            for label, properties in self.values.get(project_id, {}).items()
            for name, sketch in properties.items()
        }

    def __call__(self, batch: Batch) -> None:
        if not batch.events:
            return
        project = batch.project_key.project_id
        labels = self.known.setdefault(project, {})
        valued = self.values.setdefault(project, {})
        warnings: list[dict[str, Any]] = []
        new: list[tuple[int, str, str, str]] = []
        noticed: list[Noticed] = []

        def notice(label: str, name: str, code: str, detail: str) -> None:
            item = (project, label[:MAX_NAME], name[:MAX_NAME], code, detail)
            if item not in self.noticed:
                self.noticed.add(item)
                noticed.append(item)

        for index, event in zip(batch.indexes, batch.events, strict=True):
            label = label_of(event.type, event.event)
            if len(label) > MAX_NAME:  # not kept: memory stays bounded whatever names come
                continue
            known = labels.get(label)
            if known is None:
                where = batch.field(index, "event" if event.type in NAMED_TYPES else "type")
                if len(labels) >= self.max_event_names:
                    warnings.append(_warn(index, where, "high_cardinality",
                        f"more than {self.max_event_names} distinct event names in this project: "
                        f"does {label[:100]!r} hold an id or a time?"))  # fmt: skip
                    notice("", "", "many_events", str(self.max_event_names))
                    continue
                known = labels[label] = {}
                new.append((project, label, "", "event"))
                warnings.append(_warn(index, where, "new_event", f"{label[:100]!r} is new"))
            values = valued.get(label)
            if values is None:
                values = valued[label] = {}
            payload = event.traits if event.type in WITH_TRAITS else event.properties
            part = "traits" if event.type in WITH_TRAITS else "properties"
            for name, value in payload.items():
                kind = TYPES.get(type(value))
                if kind is None or len(name) > MAX_NAME:  # null: no type to compare
                    continue
                had = known.get(name)
                if had != kind:
                    where = batch.field(index, f"{part}.{name}")
                    if had is None:
                        if len(known) >= self.max_properties:
                            warnings.append(_warn(index, where, "high_cardinality",
                                f"{label[:100]!r} has more than {self.max_properties} distinct "
                                f"properties: does {name[:100]!r} hold an id or a time?"))  # fmt: skip
                            notice(label, "", "many_properties", str(self.max_properties))
                            continue
                        known[name] = kind
                        new.append((project, label, name, kind))
                        warnings.append(_warn(index, where, "new_property",
                                              f"{name[:100]!r} is new for {label[:100]!r} ({kind})"))  # fmt: skip
                    else:
                        warnings.append(_warn(index, where, "type_changed",
                                              f"{name[:100]!r} was a {had}, now a {kind}"))  # fmt: skip
                        notice(label, name, "type_changed", f"{had} → {kind}")
                if kind != "string":
                    continue
                sketch = values.get(name)
                if sketch is None:
                    if self.sketches >= MAX_SKETCHES:
                        continue
                    sketch = values[name] = []
                    self.sketches += 1
                elif sketch is PAST:
                    continue
                if observe(sketch, value) and estimate(sketch) > self.max_values:
                    values[name] = PAST
                    self.sketches -= 1
                    where = batch.field(index, f"{part}.{name}")
                    warnings.append(_warn(index, where, "high_cardinality",
                        f"{name[:100]!r} of {label[:100]!r} has taken more than "
                        f"{self.max_values:,} distinct values: is it an id, a time or free "
                        "text (fine in a property, not to group by)?"))  # fmt: skip
                    notice(label, name, "many_values", str(self.max_values))
        if warnings:
            batch.notes["warnings"] = warnings
        if new:
            batch.notes["seen"] = new
        if noticed:
            batch.notes["noticed"] = noticed


def _warn(index: int, field: str, code: str, message: str) -> dict[str, Any]:
    return {"index": index, "code": code, "field": field, "message": f"{field}: {message}"}
