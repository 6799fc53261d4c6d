"""Where did my event go? An event's path by its messageId, composed from what Roost keeps
anyway: the stored row (offset, times, dialect, what the pipeline noted in its context —
contract violations, a transformation that failed, a clock correction), and per destination
its rules (which one leaves the event out), its cursor, the dead letters and the delivered
batches' record (`deliveries`, kept `trace_retention_days`: one row per batch, not per
event).

An event a stage refused (a contract, a key's allowed types, a rate limit on one event, …) or
a copy deduplicated is found in this server's memory of refusals (consumers/refusals.py);
one refused before the server started, or with its whole request (a bad key, a body that is
not JSON), only the live debugger saw. The key an event came with is not kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from roost.consumers.forwarder import begins_at
from roost.consumers.outbound import Outbound
from roost.consumers.refusals import Refusals
from roost.errors import NotFound
from roost.model import Event
from roost.storage.log import LogReader
from roost.storage.metadata.destinations import Destination, DestinationStore
from roost.storage.metadata.quarantine import QuarantineStore
from roost.storage.warehouse import Warehouse

COLUMNS = ("message_id", "log_offset", "type", "event", "dialect", "timestamp", "received_at",
           "user_id", "anonymous_id", "context", "integrations")  # fmt: skip


class Stores(Protocol):
    @property
    def log(self) -> LogReader: ...
    @property
    def warehouse(self) -> Warehouse: ...
    @property
    def destinations(self) -> DestinationStore: ...
    @property
    def refusals(self) -> Refusals: ...
    @property
    def quarantine(self) -> QuarantineStore: ...


def _utc(value: Any) -> str | None:
    if value is None:
        return None
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (when.replace(tzinfo=UTC) if when.tzinfo is None else when).isoformat()


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _stored(stores: Stores, project_id: int, message_id: str) -> dict[str, Any] | None:
    flavor = stores.warehouse.flavor
    sql = (f"SELECT {', '.join(COLUMNS)} FROM {flavor.rows(project_id)} AS e "
           f"WHERE message_id = {flavor.string(message_id)} ORDER BY log_offset LIMIT 2")  # fmt: skip
    found = stores.warehouse.report(sql, timeout=30, max_rows=2)
    if not found.rows:
        return None
    return dict(zip(found.columns, found.rows[0], strict=True))


def _destination(stores: Stores, d: Destination, event: Event, offset: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": d.name, "kind": d.kind}
    outbound = Outbound(d)
    rule = outbound.refusal(event)
    if rule is not None:
        return {**out, "status": "filtered", "rule": rule}
    if not outbound.opted_in(event):
        return {**out, "status": "filtered", "rule": "integrations"}
    if d.created_at is not None and offset <= begins_at(stores.log, d):  # made after it
        return {**out, "status": "not_sent", "reason": "stored before the destination was made"}
    letters = stores.destinations.letters(d.id, covering=offset, limit=1)
    if letters:
        letter = letters[0]
        status = "delivered" if letter.status == "replayed" else "dead_lettered"
        return {**out, "status": status, "dead_letter": letter.id, "error": letter.error,
                "attempts": letter.attempts, "at": _utc(letter.created_at),
                "replayed": letter.status == "replayed"}  # fmt: skip
    batch = stores.destinations.delivery_of(d.id, offset)
    if batch is not None:
        return {**out, "status": "delivered", "at": _utc(batch.at), "attempts": batch.attempts,
                "batch": {"first_offset": batch.first_offset, "last_offset": batch.last_offset,
                          "events": batch.count}}  # fmt: skip
    state = stores.destinations.state(d.id)
    if state is not None and offset <= state.log_offset:
        return {**out, "status": "delivered", "at": None, "note": "no record kept of when"}
    if not d.enabled:
        return {**out, "status": "paused"}
    failing = state is not None and state.last_error_at is not None and (
        state.last_success_at is None or state.last_error_at > state.last_success_at)  # fmt: skip
    if failing and state is not None:
        return {**out, "status": "retrying", "last_error": state.last_error,
                "last_error_at": _utc(state.last_error_at)}  # fmt: skip
    return {**out, "status": "waiting"}


def trace(stores: Stores, project_id: int, message_id: str) -> dict[str, Any]:
    row = _stored(stores, project_id, message_id)
    refusals = stores.refusals.of(project_id, message_id)
    if row is None:
        held = stores.quarantine.of(project_id, message_id)
        if not refusals and held is None:
            raise NotFound(
                f"message_id: {message_id[:100]!r} is not stored in this project, and no request "
                "this server answered since it started refused it (one refused before, or "
                "refused whole, is shown only by the live debugger)",
                field="message_id",
            )
        found: dict[str, Any] = {"message_id": message_id, "stored": None, "refused": refusals,
                                 "destinations": []}  # fmt: skip
        if held is not None:  # held to run again once the plan or transformation is fixed
            found["quarantined"] = {"reason": held.reason, "message": held.message,
                                    "field": held.field, "held_at": _utc(held.held_at)}  # fmt: skip
        return found
    found = _traced(stores, project_id, row)
    if refusals:
        found["refused"] = refusals  # copies that came again (deduplicated) or were refused
    return found


def _traced(stores: Stores, project_id: int, row: dict[str, Any]) -> dict[str, Any]:
    context = _object(row["context"])
    received = row["received_at"]
    received = datetime.fromisoformat(received) if isinstance(received, str) else received
    event = Event(
        message_id=row["message_id"], project_id=project_id, dialect=row["dialect"],
        type=row["type"], event=row["event"], timestamp=received, received_at=received,
        context=context, integrations=_object(row["integrations"]),
    )  # fmt: skip
    offset = int(row["log_offset"])
    roost = context.get("roost") if isinstance(context.get("roost"), dict) else {}
    pipeline: dict[str, Any] = {}
    protocols = context.get("protocols")
    if isinstance(protocols, dict) and protocols.get("violations"):
        pipeline["contract_violations"] = protocols["violations"]
    for note in ("transformed", "transformation_error", "clock", "consent_strip"):
        if isinstance(roost, dict) and roost.get(note):
            pipeline[note] = roost[note]
    return {
        "message_id": row["message_id"],
        "received": {"at": _utc(received), "dialect": row["dialect"]},
        "event": {
            "type": row["type"],
            "event": row["event"],
            "timestamp": _utc(row["timestamp"]),
            "user_id": row["user_id"],
            "anonymous_id": row["anonymous_id"],
        },
        "pipeline": pipeline,
        "stored": {"log_offset": offset, "in_warehouse": True},
        "destinations": [
            _destination(stores, d, event, offset)
            for d in stores.destinations.configured(project_id)
        ],
    }
