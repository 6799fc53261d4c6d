"""Contract: check each event against its project's tracking plan (pipeline/plan.py).

A violation blocks the event (422, or a per-event rejection in a batch), omits the offending
properties, or lets it through; the last two flag it as Segment Protocols does, in
`context.protocols.violations`. Violations are counted per project, event and rule. Plans
are compiled once and cached for `ttl` seconds, so a changed plan applies within that.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from roost import metrics
from roost.model import Event, Reason, label_of
from roost.pipeline.batch import Batch, Refusal, Verdict
from roost.pipeline.cache import PerProject
from roost.pipeline.plan import Plan

IDENTITY_CALLS = ("identify", "group")


def _violation(error: Any) -> dict[str, Any]:
    path = ".".join(str(p) for p in error.absolute_path)
    return {"rule": str(error.validator), "path": path or None, "message": error.message}


def _omit(payload: dict[str, Any], errors: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The payload without the top-level properties the errors are about."""
    drop = {str(e.absolute_path[0]) for e in errors if e.absolute_path}
    if any(e.validator == "additionalProperties" for e in errors):
        drop |= set(payload) - set(schema.get("properties", {}))
    return {k: v for k, v in payload.items() if k not in drop}


def _flag(event: Event, violations: list[dict[str, Any]]) -> None:
    protocols = event.context.get("protocols")
    protocols = dict(protocols) if isinstance(protocols, dict) else {}
    protocols["violations"] = violations
    event.context = {**event.context, "protocols": protocols}


class Contracts:
    def __init__(
        self,
        plan_for: Callable[[int], Plan],
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = PerProject(plan_for, ttl, clock)
        self.violations: Counter[tuple[int, str, str]] = Counter()

    def _count(self, project: int, slug: str, label: str, rules: list[str], planned: bool) -> None:
        for rule in rules:
            self.violations[(project, label, rule)] += 1
            metrics.CONTRACT_VIOLATIONS.labels(
                slug, label if planned else "(unplanned)", rule
            ).inc()

    def __call__(self, batch: Batch) -> None:
        key = batch.project_key
        plan = self.plan(key.project_id)
        if not plan.contracts and plan.unplanned == "allow":
            return

        def verdict(index: int, event: Event) -> Verdict:
            found = plan.find(event.type, event.event)
            if found is not None:
                compiled = found[1]
                payload = event.traits if event.type in IDENTITY_CALLS else event.properties
                if compiled.passes(payload):  # the hot path: one call of generated code
                    return None
                errors = compiled.errors(payload)
                if not errors:
                    return None
            label = label_of(event.type, event.event)
            if found is None:
                if plan.unplanned == "allow":
                    return None
                self._count(key.project_id, key.project_slug, label, ["unplanned"], planned=False)
                if plan.unplanned == "flag":
                    _flag(
                        event,
                        [
                            {
                                "rule": "unplanned",
                                "path": None,
                                "message": f"{label!r} is not in the tracking plan",
                            }
                        ],
                    )
                    return None
                field = batch.field(index, "event" if event.event else "type")
                refused = Refusal(
                    Reason.CONTRACT_VIOLATION,
                    f"{field}: {label!r} is not in the tracking plan",
                    field,
                    422,
                )
                batch.held.append((event, refused))  # quarantined: replayed once planned
                return refused
            contract = found[0]
            violations = [_violation(e) for e in errors]
            self._count(
                key.project_id,
                key.project_slug,
                label,
                [v["rule"] for v in violations],
                planned=True,
            )
            if contract.action == "block":
                part = "traits" if event.type in IDENTITY_CALLS else "properties"
                first = violations[0]
                where = f"{part}.{first['path']}" if first["path"] else part
                field = batch.field(index, where)
                refused = Refusal(
                    Reason.CONTRACT_VIOLATION,
                    f"{field}: {first['message']} (rule {first['rule']})",
                    field,
                    422,
                )
                batch.held.append((event, refused))
                return refused
            if contract.action == "omit":
                kept = _omit(payload, errors, contract.schema)
                if event.type in IDENTITY_CALLS:
                    event.traits = kept
                else:
                    event.properties = kept
            _flag(event, violations)
            return None

        batch.keep(verdict)
