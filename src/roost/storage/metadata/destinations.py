"""Destinations as configured, and each one's delivery state: cursor, counts, dead letters.

A destination is a kind (a plugin of `roost.destinations`), its options, and what the
forwarder does around it: which types and event names it takes (names filter the named
calls: track, page, screen), which consent categories an
event must grant, a property mapping, batching (count, bytes, seconds) and retries. Its
cursor (the Log offset delivered up to) is written in the same transaction as the outcome
of each batch, so a restart resumes exactly after the last batch delivered or set aside.
Replays are requests the running forwarder picks up: a rewind of the cursor, or dead letters
marked for another try.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from roost.destinations.base import factory
from roost.errors import BadRequest, NotFound
from roost.model import EVENT_TYPES
from roost.storage.metadata import create_tables, delete_row, replace_row

schema = sa.MetaData()
destinations = sa.Table(
    "destinations",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("rewind_to", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("project_id", "name"),
    sqlite_autoincrement=True,  # an id is never reused: a new destination never inherits state
)
states = sa.Table(
    "delivery_states",
    schema,
    sa.Column("destination_id", sa.Integer, primary_key=True),
    sa.Column("log_offset", sa.BigInteger, nullable=False),
    sa.Column("delivered", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("dead_lettered", sa.BigInteger, nullable=False),
    sa.Column("last_success_at", sa.DateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", sa.DateTime, nullable=True),
)
deliveries = sa.Table(  # each delivered batch's range of offsets: what a trace answers from
    "deliveries",
    schema,
    sa.Column("destination_id", sa.Integer, primary_key=True),
    sa.Column("first_offset", sa.BigInteger, primary_key=True),
    sa.Column("last_offset", sa.BigInteger, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)
dead_letters = sa.Table(
    "dead_letters",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("destination_id", sa.Integer, nullable=False, index=True),
    sa.Column("first_offset", sa.BigInteger, nullable=False),
    sa.Column("last_offset", sa.BigInteger, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # dead, replay, replayed
)

COMMON = {
    "name", "kind", "types", "events", "consent", "mapping", "batch_count", "batch_bytes",
    "batch_seconds", "max_attempts", "retry_base_seconds", "retry_max_seconds", "enabled",
    "audiences", "alert_backlog", "alert_waiting_seconds",
}  # fmt: skip
AUDIENCES_AS = ("track", "identify")  # how audience entries and exits are sent


@dataclass(frozen=True)
class Destination:
    id: int
    project_id: int
    name: str
    kind: str
    options: dict[str, Any]
    types: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    consent: tuple[str, ...] = ()
    mapping: dict[str, str] = field(default_factory=dict)
    batch_count: int = 500
    batch_bytes: int = 450_000
    batch_seconds: float = 1.0
    max_attempts: int = 10
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    enabled: bool = True
    audiences: str = "track"  # Audience Entered/Exited as tracks, or as identify traits
    alert_backlog: int | None = None  # alert (once a day) past this many events waiting
    alert_waiting_seconds: float | None = None  # … or when the oldest has waited this long
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rewind_to: int | None = None

    def spec(self) -> dict[str, Any]:
        """As it is written in a config file: the options beside the forwarder's settings."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, **self.options}
        for name in sorted(COMMON - {"name", "kind"}):
            value = getattr(self, name)
            default = Destination.__dataclass_fields__[name].default
            if value != default and value not in ((), {}):
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class State:
    log_offset: int
    delivered: int = 0
    failures: int = 0
    dead_lettered: int = 0
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    destination_id: int
    first_offset: int
    last_offset: int
    count: int
    events: list[dict[str, Any]]
    error: str
    attempts: int
    created_at: datetime
    status: str


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _bad(where: str, rule: str) -> BadRequest:
    return BadRequest(f"{where}: {rule}", field=where)


def _names(raw: dict[str, Any], name: str, where: str) -> tuple[str, ...] | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(f"{where}.{name}", "must be a list of strings")
    return tuple(value)


def _number(raw: dict[str, Any], name: str, where: str, kind: type, low: float) -> Any:
    """A number of at least `low`, or the field's default (None: none is set)."""
    default = Destination.__dataclass_fields__[name].default
    value = raw.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise _bad(f"{where}.{name}", f"must be a number of at least {low:g}")
    if kind is int and not isinstance(value, int):
        raise _bad(f"{where}.{name}", "must be a whole number")
    return kind(value)


def parse(raw: Any, project_id: int, where: str = "destination") -> Destination:
    """A destination as configured, checked in full (the plugin checks its own options)."""
    if not isinstance(raw, dict):
        raise _bad(where, "must be a table with name and kind")
    name, kind = raw.get("name"), raw.get("kind")
    if not isinstance(name, str) or not name or len(name) > 100:
        raise _bad(f"{where}.name", "must be 1-100 characters")
    if not isinstance(kind, str) or not kind:
        raise _bad(f"{where}.kind", "is required")
    types = _names(raw, "types", where)
    for t in types or ():
        if t not in EVENT_TYPES:
            raise _bad(f"{where}.types", f"{t!r} is not one of {', '.join(EVENT_TYPES)}")
    mapping = raw.get("mapping", {})
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in mapping.items()
    ):
        raise _bad(f"{where}.mapping", "must map property names to property names")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _bad(f"{where}.enabled", "must be true or false")
    audiences = raw.get("audiences", "track")
    if audiences not in AUDIENCES_AS:
        raise _bad(f"{where}.audiences", f"must be one of {', '.join(AUDIENCES_AS)}")
    options = {k: v for k, v in raw.items() if k not in COMMON}
    build = factory(kind, f"{where}.kind")
    try:
        build(options).close()
    except BadRequest as error:
        option = error.field or ""
        raise _bad(f"{where}.{option}", error.message.partition(": ")[2] or error.message) from None
    return Destination(
        id=0,
        project_id=project_id,
        name=name,
        kind=kind,
        options=options,
        types=types,
        events=_names(raw, "events", where),
        consent=_names(raw, "consent", where) or (),
        mapping=dict(mapping),
        batch_count=_number(raw, "batch_count", where, int, 1),
        batch_bytes=_number(raw, "batch_bytes", where, int, 1024),
        batch_seconds=_number(raw, "batch_seconds", where, float, 0),
        max_attempts=_number(raw, "max_attempts", where, int, 1),
        retry_base_seconds=_number(raw, "retry_base_seconds", where, float, 0),
        retry_max_seconds=_number(raw, "retry_max_seconds", where, float, 0),
        enabled=enabled,
        audiences=audiences,
        alert_backlog=_number(raw, "alert_backlog", where, int, 1),
        alert_waiting_seconds=_number(raw, "alert_waiting_seconds", where, float, 1),
    )


def _from_row(row: Any) -> Destination:
    spec = msgspec.json.decode(row.spec)
    options = {k: v for k, v in spec.items() if k not in COMMON}
    fields = {k: v for k, v in spec.items() if k in COMMON - {"name", "kind"}}
    for name in ("types", "events", "consent"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    return Destination(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        kind=row.kind,
        options=options,
        created_at=row.created_at,
        updated_at=row.updated_at,
        rewind_to=row.rewind_to,
        **fields,
    )


class DestinationStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    # Configuration

    def set(self, project_id: int, raw: dict[str, Any]) -> Destination:
        parsed = parse(raw, project_id)
        spec = msgspec.json.encode(parsed.spec()).decode()
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(destinations.c.id).where(
                    destinations.c.project_id == project_id, destinations.c.name == parsed.name
                )
            ).first()
            values = {"kind": parsed.kind, "spec": spec, "updated_at": _now()}
            if found:
                conn.execute(
                    destinations.update().where(destinations.c.id == found[0]).values(**values)
                )
            else:
                conn.execute(
                    destinations.insert().values(
                        project_id=project_id, name=parsed.name, created_at=_now(), **values
                    )
                )
        return self.get(project_id, parsed.name)

    def get(self, project_id: int, name: str) -> Destination:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(destinations).where(
                    destinations.c.project_id == project_id, destinations.c.name == name
                )
            ).first()
        if row is None:
            raise NotFound(f"destination {name!r} not found", field="destination")
        return _from_row(row)

    def configured(self, project_id: int | None = None) -> list[Destination]:
        query = sa.select(destinations).order_by(destinations.c.project_id, destinations.c.name)
        if project_id is not None:
            query = query.where(destinations.c.project_id == project_id)
        with self.engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def lowest_cursor(self) -> int | None:
        """The lowest saved cursor of an enabled destination: the Log must keep what follows."""
        enabled = [d.id for d in self.configured() if d.enabled]
        if not enabled:
            return None
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(sa.func.min(states.c.log_offset)).where(
                    states.c.destination_id.in_(enabled)
                )
            ).scalar()
        return None if found is None else int(found)

    def delete(self, project_id: int, name: str) -> None:
        found = self.get(project_id, name)
        with self.engine.begin() as conn:
            conn.execute(destinations.delete().where(destinations.c.id == found.id))
        self.forget(found.id)

    def forget(self, destination_id: int) -> None:
        """Drop a deleted destination's state and letters (again, once its forwarder stopped:
        a batch it finished after the delete writes its state back)."""
        with self.engine.begin() as conn:
            delete_row(conn, states, destination_id=destination_id)
            conn.execute(
                dead_letters.delete().where(dead_letters.c.destination_id == destination_id)
            )

    # Replay requests, taken by the running forwarder

    def rewind(self, project_id: int, name: str, after_offset: int) -> Destination:
        found = self.get(project_id, name)
        with self.engine.begin() as conn:
            conn.execute(
                destinations.update()
                .where(destinations.c.id == found.id)
                .values(rewind_to=max(0, after_offset))
            )
        return found

    def take_rewind(self, destination_id: int) -> int | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(destinations.c.rewind_to).where(destinations.c.id == destination_id)
            ).first()
            if row is None or row[0] is None:
                return None
            conn.execute(
                destinations.update()
                .where(destinations.c.id == destination_id)
                .values(rewind_to=None)
            )
        return int(row[0])

    def replay_letters(self, destination_id: int, letter_ids: Sequence[int] | None = None) -> int:
        """Mark dead letters (all, or these) for another try; how many were marked."""
        query = dead_letters.update().where(
            dead_letters.c.destination_id == destination_id, dead_letters.c.status == "dead"
        )
        if letter_ids is not None:
            query = query.where(dead_letters.c.id.in_(list(letter_ids)))
        with self.engine.begin() as conn:
            return conn.execute(query.values(status="replay")).rowcount

    def erase_letters(self, project_id: int, message_ids: Sequence[str]) -> int:
        """Take erased events out of the project's dead letters (a letter left empty goes);
        how many were taken."""
        wanted = frozenset(message_ids)
        taken = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(dead_letters.c.id, dead_letters.c.events)
                .join(destinations, destinations.c.id == dead_letters.c.destination_id)
                .where(destinations.c.project_id == project_id)
            ).all()
            for letter_id, text in rows:
                events = msgspec.json.decode(text)
                kept = [e for e in events if e.get("messageId") not in wanted]
                if len(kept) == len(events):
                    continue
                taken += len(events) - len(kept)
                found = dead_letters.c.id == letter_id
                if kept:
                    encoded = msgspec.json.encode(kept).decode()
                    conn.execute(
                        dead_letters.update().where(found).values(events=encoded, count=len(kept))
                    )
                else:
                    conn.execute(dead_letters.delete().where(found))
        return taken

    # Delivery state, written by the forwarder

    def state(self, destination_id: int) -> State | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(states).where(states.c.destination_id == destination_id)
            ).first()
        if row is None:
            return None
        return State(**{k: v for k, v in row._mapping.items() if k != "destination_id"})

    def save(self, conn: Connection, destination_id: int, state: State) -> None:
        replace_row(conn, states, destination_id=destination_id, **state.__dict__)

    def record(
        self,
        destination_id: int,
        state: State,
        letter: tuple[int, int, list[dict[str, Any]], str, int] | None = None,
        replayed: int | None = None,
        delivered: tuple[int, int, int, int] | None = None,
    ) -> None:
        """The outcome of one batch, with the cursor it moves to, in one transaction;
        `delivered`: (first offset, last offset, events, attempts) of a batch delivered."""
        with self.engine.begin() as conn:
            self.save(conn, destination_id, state)
            if delivered is not None:
                first, last, count, attempts = delivered
                replace_row(conn, deliveries, destination_id=destination_id, first_offset=first,
                            last_offset=last, count=count, attempts=attempts, at=_now())  # fmt: skip
            if letter is not None:
                first, last, events, error, attempts = letter
                conn.execute(
                    dead_letters.insert().values(
                        destination_id=destination_id,
                        first_offset=first,
                        last_offset=last,
                        count=len(events),
                        events=msgspec.json.encode(events).decode(),
                        error=error,
                        attempts=attempts,
                        created_at=_now(),
                        status="dead",
                    )
                )
            if replayed is not None:
                conn.execute(
                    dead_letters.update()
                    .where(dead_letters.c.id == replayed)
                    .values(status="replayed")
                )

    def delivery_of(self, destination_id: int, offset: int) -> Any:
        """The delivered batch that held the event at `offset`, if one is remembered."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(deliveries).where(
                    deliveries.c.destination_id == destination_id,
                    deliveries.c.first_offset <= offset, deliveries.c.last_offset >= offset,
                ).order_by(deliveries.c.first_offset.desc()).limit(1)
            ).first()  # fmt: skip

    def forget_deliveries(self, destination_id: int, before: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(deliveries.delete().where(deliveries.c.destination_id == destination_id,
                                                   deliveries.c.at < before))  # fmt: skip

    def letter_failed(self, letter_id: int, error: str, attempts: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                dead_letters.update()
                .where(dead_letters.c.id == letter_id)
                .values(status="dead", error=error, attempts=attempts)
            )

    def letters(
        self,
        destination_id: int,
        status: str | None = None,
        limit: int = 100,
        covering: int | None = None,
    ) -> list[DeadLetter]:
        """The destination's dead letters (of a status; holding the event at `covering`)."""
        query = (
            sa.select(dead_letters)
            .where(dead_letters.c.destination_id == destination_id)
            .order_by(dead_letters.c.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        if covering is not None:
            query = query.where(
                dead_letters.c.first_offset <= covering, dead_letters.c.last_offset >= covering
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DeadLetter(
                **{
                    **row._mapping,
                    "events": msgspec.json.decode(row.events),
                }
            )
            for row in rows
        ]
