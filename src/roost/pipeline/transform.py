"""Transform: run the project's ordered transformation steps (pipeline/steps.py) on each event.

A filter or a sample that drops an event answers as accepted (the client did nothing wrong)
with the reason in the debugger. An event a step changed notes which fields, by name, in
`context.roost.transformed` (for its trace). A step that raises never loses the event: by default it is
stored as it was before the first step, with the error in `context.roost.transformation_error`
and in the request's outcomes, so the debugger shows it; with the project's
`transformation_errors: quarantine` it is held in the quarantine instead (written before the
answer, which counts it accepted: it is stored durably, there) until the transformation is
fixed and the quarantine replayed — unless the project's quarantine is full of such events
(storage/metadata/quarantine.py), when it is stored as by default.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from roost import metrics
from roost.model import Event, Outcome, Reason
from roost.pipeline.batch import Batch, Refusal
from roost.pipeline.cache import PerProject
from roost.pipeline.steps import DICT_FIELDS, Step, private

MAX_CHANGED = 50  # field names noted per event


def changed(before: Event, after: Event) -> list[str]:
    """The fields a transformation changed (a dict field's keys one level down), by name
    only: a step that removes personal data must not leave it on disk in a note."""
    found: list[str] = []
    for name in Event.__struct_fields__:
        old, new = getattr(before, name), getattr(after, name)
        if old is new or old == new:
            continue
        if name in DICT_FIELDS and isinstance(old, dict) and isinstance(new, dict):
            found += [f"{name}.{k}" for k in sorted(old.keys() | new.keys(), key=str)
                      if old.get(k, _MISSING) != new.get(k, _MISSING)]  # fmt: skip
        else:
            found.append(name)
    return found[:MAX_CHANGED]


_MISSING = object()


def _noted(event: Event, fields: list[str]) -> Event:
    roost = event.context.get("roost")
    roost = dict(roost) if isinstance(roost, dict) else {}
    roost["transformed"] = fields
    return msgspec.structs.replace(event, context={**event.context, "roost": roost})


def _failed(event: Event, message: str) -> Event:
    roost = event.context.get("roost")
    roost = dict(roost) if isinstance(roost, dict) else {}
    roost["transformation_error"] = message
    return msgspec.structs.replace(event, context={**event.context, "roost": roost})


class Transform:
    def __init__(
        self,
        steps_for: Callable[[int], list[Step]],
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        errors_for: Callable[[int], str] = lambda _: "store",
        room_for: Callable[[int], bool] = lambda _: True,
    ) -> None:
        self.steps = PerProject(steps_for, ttl, clock)
        self.errors = PerProject(errors_for, ttl, clock)
        self.room = PerProject(room_for, ttl, clock)  # room in the quarantine for more

    def __call__(self, batch: Batch) -> None:
        key = batch.project_key
        steps = self.steps(key.project_id)
        if not steps:
            return
        places = [f"transformations[{n}] ({step.label})" for n, step in enumerate(steps)]
        quarantining = self.errors(key.project_id) == "quarantine"
        roots = frozenset().union(*(step.writes for step in steps))
        mutators = [step.mutate for step in steps]

        def transform(index: int, original: Event) -> Event | Refusal:
            event = private(original, roots)
            number = 0
            try:
                for mutate in mutators:
                    result = mutate(event)
                    if result is None:
                        label = steps[number].label
                        reason = Reason.SAMPLED if label == "sample" else Reason.FILTERED
                        return Refusal(reason, f"dropped by {places[number]}", None, 200)
                    event = result
                    number += 1
            except Exception as exc:
                message = f"{places[number]}: {type(exc).__name__}: {exc}"
                label = steps[number].label
                metrics.TRANSFORMATION_FAILURES.labels(key.project_slug, label).inc()
                # accepted: kept in the quarantine (ingest writes it before answering); its
                # room (a count in the metadata store, cached a second) asked only on a failure
                if quarantining and self.room(key.project_id):
                    refused = Refusal(Reason.TRANSFORMATION_FAILED, message, None, 200)
                    batch.held.append((original, refused))
                    return refused
                batch.outcomes.append(
                    Outcome(
                        index=index,
                        reason=Reason.TRANSFORMATION_FAILED,
                        message=message,
                        status=200,
                        stored=True,
                    )
                )
                return _failed(original, message)
            fields = changed(original, event)
            return _noted(event, fields) if fields else event

        batch.rewrite(transform)
        # Every event stored from here went through every step (or failed one: its outcome
        # says so); the debugger shows these labels for it.
        batch.notes["transformations"] = [step.label for step in steps]
