"""The quarantine: events a tracking plan blocked, and with `transformation_errors:
quarantine` events a transformation failed on, kept per project with why, so that once the
plan or the transformation is fixed they can be run through the pipeline again
(web/api/quarantine.py) rather than lost.

A blocked event's client was told (422): it was not acknowledged, and at most MAX_HELD of them
are kept a project, the oldest going first. A transformation's failure is the project's, not
the client's: the event was acknowledged, so it is never dropped here — and the pipeline
stores such events as it always did once a project holds MAX_FAILED_HELD of them (`room`).

Kept without the client's IP (no IP reaches the disk); a messageId held again replaces the
older copy (a client retrying); an erasure reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.model import Event, Reason
from roost.storage.metadata import create_tables, widen_columns

MAX_HELD = 10_000  # blocked by a plan (not acknowledged)
MAX_FAILED_HELD = 100_000  # failed by a transformation (acknowledged: never dropped)
ACKNOWLEDGED = str(Reason.TRANSFORMATION_FAILED)

schema = sa.MetaData()
held = sa.Table(
    "quarantine",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("who", sa.Text, nullable=True),  # user or anonymous id (any length): for erasure
    sa.Column("at", sa.DateTime, nullable=False),  # the event's time (naive UTC): for erasure
    sa.Column("reason", sa.String(50), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("field", sa.Text, nullable=True),  # a path through client-named properties
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("held_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("project_id", "message_id"),
    sqlite_autoincrement=True,
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Event).decode


@dataclass(frozen=True)
class Held:
    id: int
    message_id: str
    reason: str
    message: str
    field: str | None
    held_at: datetime
    event: Event


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class QuarantineStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)
        widen_columns(engine, held)  # `who` and `field` were VARCHAR(255) at first

    def hold(self, project_id: int, items: Sequence[tuple[Event, str, str, str | None]]) -> None:
        """Keep (event, reason, message, field) items; the same messageId replaces its copy."""
        with self.engine.begin() as conn:
            for event, reason, message, field in items:
                kept = msgspec.structs.replace(event, ip=None)  # no IP reaches the disk
                conn.execute(held.delete().where(held.c.project_id == project_id,
                                                 held.c.message_id == event.message_id))  # fmt: skip
                conn.execute(held.insert().values(
                    project_id=project_id, message_id=event.message_id,
                    who=event.user_id or event.anonymous_id, reason=str(reason),
                    at=event.timestamp.astimezone(UTC).replace(tzinfo=None),
                    message=message[:2000], field=field, event=_encode(kept).decode(),
                    held_at=_now(),
                ))  # fmt: skip
            blocked = sa.and_(held.c.project_id == project_id, held.c.reason != ACKNOWLEDGED)
            count = conn.execute(sa.select(sa.func.count()).where(blocked)).scalar()
            if count and count > MAX_HELD:
                cut = conn.execute(
                    sa.select(held.c.id).where(blocked)
                    .order_by(held.c.id.desc()).offset(MAX_HELD).limit(1)
                ).scalar()  # fmt: skip
                if cut is not None:
                    conn.execute(held.delete().where(blocked, held.c.id <= cut))

    def room(self, project_id: int) -> bool:
        """Whether the project may hold more events a transformation failed on."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.count()).where(
                held.c.project_id == project_id, held.c.reason == ACKNOWLEDGED)).scalar()  # fmt: skip
        return int(found or 0) < MAX_FAILED_HELD

    def of(self, project_id: int, message_id: str) -> Held | None:
        """The held copy of an event, if any (for its trace)."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(held).where(held.c.project_id == project_id,
                                                   held.c.message_id == message_id)).first()  # fmt: skip
        if r is None:
            return None
        return Held(r.id, r.message_id, r.reason, r.message, r.field, r.held_at, _decode(r.event))

    def count(self, project_id: int) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(sa.func.count()).where(held.c.project_id == project_id)
            ).scalar()
        return int(found or 0)

    def listed(self, project_id: int, limit: int = 100, after_id: int = 0) -> list[Held]:
        """The held events, oldest first (after `after_id`: the next page)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(held).where(held.c.project_id == project_id, held.c.id > after_id)
                .order_by(held.c.id).limit(limit)
            ).all()  # fmt: skip
        return [Held(r.id, r.message_id, r.reason, r.message, r.field, r.held_at, _decode(r.event))
                for r in rows]  # fmt: skip

    def release(self, ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(held.delete().where(held.c.id.in_(list(ids))))

    def still(self, items: Sequence[tuple[int, str, str, str | None]]) -> None:
        """Held again after a replay: (id, reason, message, field), the new reason."""
        with self.engine.begin() as conn:
            for item_id, reason, message, field in items:
                conn.execute(held.update().where(held.c.id == item_id).values(
                    reason=str(reason), message=message[:2000], field=field, held_at=_now()))  # fmt: skip

    def erase(
        self,
        project_id: int,
        ids: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """An erased user's held events (by id), or those of a time range; how many went."""
        if since is not None and until is not None:
            chosen = sa.and_(held.c.at >= since, held.c.at < until)
        else:
            chosen = held.c.who.in_(list(ids))
        with self.engine.begin() as conn:
            gone = conn.execute(held.delete().where(held.c.project_id == project_id, chosen))
        return int(gone.rowcount or 0)
