"""Audiences: named conditions over a person's traits, their groups' traits and what they did,
and who is in each — kept up to date as events arrive (consumers/audiences.py).

Defined in the project's configuration document (`audiences:`), each with conditions that
must all hold:

    audiences:
      - name: Power buyers
        conditions:
          - {trait: plan, in: [pro, enterprise]}          # or {trait: email, exists: true}
          - {group_trait: tier, in: [gold]}                # any of the person's groups
          - {performed: Order Completed, at_least: 3, within_days: 30, where: {currency: EUR}}
          - {not_performed: Churned, within_days: 90}

State, in the metadata database beside the profiles (SQLite here, PostgreSQL in a cluster):
per behaviour condition the matching events counted per (id, UTC day) — so "within D days"
is a sum over D buckets and nothing is ever re-read; the ids seen per project (who "did not
perform" applies to); the memberships with their entered and exited times; and per
audience the definition it was counted for and the Log offset its counts start after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from roost.errors import BadRequest
from roost.storage.metadata import create_tables

MAX_AUDIENCES = 20
MAX_CONDITIONS = 10
MAX_WHERE = 10
MAX_DAYS = 365
MAX_TEXT = 200
KINDS = ("trait", "group_trait", "performed", "not_performed")

schema = sa.MetaData()
counts = sa.Table(
    "audience_counts",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("audience", sa.String(MAX_TEXT), primary_key=True),
    sa.Column("condition", sa.Integer, primary_key=True),
    sa.Column("who", sa.String(255), primary_key=True),  # the event's user or anonymous id
    sa.Column("day", sa.Date, primary_key=True),  # UTC
    sa.Column("n", sa.Integer, nullable=False),
)
seen = sa.Table(
    "audience_seen",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("who", sa.String(255), primary_key=True),
)
members = sa.Table(
    "audience_members",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("audience", sa.String(MAX_TEXT), primary_key=True),
    sa.Column("person", sa.String(255), primary_key=True),
    sa.Column("entered_at", sa.DateTime, primary_key=True),
    sa.Column("exited_at", sa.DateTime, nullable=True),  # NULL: a member now
    sa.Index("ix_audience_members_person", "project_id", "person"),
)
outbox = sa.Table(  # entries and exits not yet in the Log (consumers/audience_events.py)
    "audience_outbox",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("person", sa.String(255), nullable=False),
    sa.Column("audience", sa.String(MAX_TEXT), nullable=False),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    sa.Column("exited_at", sa.DateTime, nullable=True),  # NULL: an entry
)
counted = sa.Table(
    "audience_counted",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("audience", sa.String(MAX_TEXT), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),  # what the counts were made for
    sa.Column("after_offset", sa.BigInteger, nullable=False),  # counts hold events up to it
)


@dataclass(frozen=True)
class Condition:
    kind: str  # one of KINDS
    name: str  # the trait, or the event
    values: tuple[Any, ...] | None = None  # trait/group_trait: one of these
    exists: bool | None = None  # trait/group_trait: present (or not)
    at_least: int = 1
    within_days: int = 30
    where: tuple[tuple[str, Any], ...] = ()

    @property
    def counted(self) -> bool:
        return self.kind in ("performed", "not_performed")

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.kind: self.name}
        if self.values is not None:
            out["in"] = list(self.values)
        if self.exists is not None:
            out["exists"] = self.exists
        if self.kind == "performed":
            out["at_least"] = self.at_least
        if self.counted:
            out["within_days"] = self.within_days
            if self.where:
                out["where"] = dict(self.where)
        return out

    def holds(self, traits: dict[str, Any]) -> bool:
        present = self.name in traits and traits[self.name] is not None
        if self.exists is not None:
            return present == self.exists
        return present and self.values is not None and traits[self.name] in self.values


@dataclass(frozen=True)
class Audience:
    name: str
    conditions: tuple[Condition, ...]

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "conditions": [c.spec() for c in self.conditions]}

    def definition(self) -> str:
        return msgspec.json.encode(self.spec()).decode()


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (
        isinstance(value, str) and len(value) > MAX_TEXT
    )


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise _bad(where, f"must be a table with one of {', '.join(KINDS)}")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise _bad(where, f"must name exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    allowed = {kind, "in", "exists"} if kind in ("trait", "group_trait") else {
        kind, "at_least", "within_days", "where"}  # fmt: skip
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"is not a field of a {kind} condition")
    name = raw[kind]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TEXT:
        raise _bad(f"{where}.{kind}", f"must be 1–{MAX_TEXT} characters")
    if kind in ("trait", "group_trait"):
        values, exists = raw.get("in"), raw.get("exists")
        if (values is None) == (exists is None):
            raise _bad(where, "needs either `in` (a list of values) or `exists` (true or false)")
        if values is not None:
            if not isinstance(values, list) or not 0 < len(values) <= 100:
                raise _bad(f"{where}.in", "must be a list of 1–100 values")
            if not all(_scalar(v) for v in values):
                raise _bad(
                    f"{where}.in", f"values must be strings (≤ {MAX_TEXT}), numbers or booleans"
                )
            return Condition(kind, name, values=tuple(values))
        if not isinstance(exists, bool):
            raise _bad(f"{where}.exists", "must be true or false")
        return Condition(kind, name, exists=exists)
    at_least = raw.get("at_least", 1)
    if kind == "not_performed" and "at_least" in raw:
        raise _bad(f"{where}.at_least", "is not a field of a not_performed condition")
    if (
        isinstance(at_least, bool)
        or not isinstance(at_least, int)
        or not 1 <= at_least <= 1_000_000
    ):
        raise _bad(f"{where}.at_least", "must be a whole number from 1 to 1000000")
    days = raw.get("within_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise _bad(f"{where}.within_days", f"must be a whole number of days from 1 to {MAX_DAYS}")
    matched = raw.get("where", {})
    if not isinstance(matched, dict) or len(matched) > MAX_WHERE:
        raise _bad(f"{where}.where", f"must be a table of at most {MAX_WHERE} properties")
    for key, value in matched.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_TEXT or not _scalar(value):
            raise _bad(
                f"{where}.where",
                "property names ≤ 200 characters, values strings, numbers or booleans",
            )
    return Condition(kind, name, at_least=at_least, within_days=days,
                     where=tuple(sorted(matched.items())))  # fmt: skip


def check_audiences(raw: Any, where: str = "audiences") -> list[Audience]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_AUDIENCES:
        raise _bad(where, f"must be a list of at most {MAX_AUDIENCES} audiences")
    found: list[Audience] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _bad(at, "must be a table with name and conditions")
        unknown = sorted(set(item) - {"name", "conditions"})
        if unknown:
            raise _bad(f"{at}.{unknown[0]}", "is not a field of an audience (name, conditions)")
        name = item.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_TEXT:
            raise _bad(f"{at}.name", f"must be 1–{MAX_TEXT} characters")
        if any(a.name == name for a in found):
            raise _bad(f"{at}.name", f"{name!r} is named twice")
        conditions = item.get("conditions")
        if not isinstance(conditions, list) or not 0 < len(conditions) <= MAX_CONDITIONS:
            raise _bad(f"{at}.conditions", f"must be a list of 1–{MAX_CONDITIONS} conditions")
        found.append(Audience(name, tuple(
            _condition(c, f"{at}.conditions[{j}]") for j, c in enumerate(conditions))))  # fmt: skip
    return found


@dataclass(frozen=True)
class Membership:
    audience: str
    person: str
    entered_at: datetime
    exited_at: datetime | None


class AudienceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    # counts, ids seen and what each audience's counts were made for (the consumer's)

    def counted_for(self, conn: Connection, project_id: int) -> dict[str, tuple[str, int]]:
        rows = conn.execute(sa.select(counted).where(counted.c.project_id == project_id)).all()
        return {r.audience: (r.definition, int(r.after_offset)) for r in rows}

    def restart(
        self, conn: Connection, project_id: int, audience: Audience | str, after: int
    ) -> None:
        """Forget an audience's counts (it changed, or went): counted again from `after`."""
        name = audience if isinstance(audience, str) else audience.name
        for table in (counts, counted):
            conn.execute(table.delete().where(table.c.project_id == project_id,
                                              table.c.audience == name))  # fmt: skip
        if not isinstance(audience, str):
            conn.execute(counted.insert().values(project_id=project_id, audience=name,
                                                 definition=audience.definition(), after_offset=after))  # fmt: skip

    def add(
        self, conn: Connection, project_id: int, adds: dict[tuple[str, int, str, date], int]
    ) -> None:
        """Add to counts: (audience, condition, id, day) → events."""
        for (audience, condition, who, day), n in adds.items():
            key = (counts.c.project_id == project_id, counts.c.audience == audience,
                   counts.c.condition == condition, counts.c.who == who, counts.c.day == day)  # fmt: skip
            done = conn.execute(counts.update().where(*key).values(n=counts.c.n + n))
            if done.rowcount == 0:
                conn.execute(counts.insert().values(project_id=project_id, audience=audience,
                                                    condition=condition, who=who, day=day, n=n))  # fmt: skip

    def count(self, conn: Connection, project_id: int, audience: str, condition: int,
              ids: list[str], since: date) -> int:  # fmt: skip
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(counts.c.n), 0)).where(
                counts.c.project_id == project_id,
                counts.c.audience == audience,
                counts.c.condition == condition,
                counts.c.who.in_(ids),
                counts.c.day >= since,
            )
        ).scalar()
        return int(total or 0)

    def expiring(self, conn: Connection, project_id: int, audience: str, condition: int,
                 before: date) -> list[str]:  # fmt: skip
        """The ids with counts older than `before` (which then go): their sums change."""
        key = (counts.c.project_id == project_id, counts.c.audience == audience,
               counts.c.condition == condition, counts.c.day < before)  # fmt: skip
        ids = [r[0] for r in conn.execute(sa.select(counts.c.who).where(*key).distinct()).all()]
        conn.execute(counts.delete().where(*key))
        return ids

    def see(self, conn: Connection, project_id: int, ids: set[str]) -> None:
        known = set()
        listed = sorted(ids)
        for start in range(0, len(listed), 500):
            part = listed[start : start + 500]
            known |= {r[0] for r in conn.execute(sa.select(seen.c.who).where(
                seen.c.project_id == project_id, seen.c.who.in_(part))).all()}  # fmt: skip
        fresh = [{"project_id": project_id, "who": w} for w in listed if w not in known]
        if fresh:
            conn.execute(seen.insert(), fresh)

    def everyone(self, conn: Connection, project_id: int) -> list[str]:
        return [
            r[0]
            for r in conn.execute(
                sa.select(seen.c.who).where(seen.c.project_id == project_id)
            ).all()
        ]

    # memberships

    def current(self, conn: Connection, project_id: int, audience: str, person: str) -> bool:
        return conn.execute(sa.select(members.c.person).where(
            members.c.project_id == project_id, members.c.audience == audience,
            members.c.person == person, members.c.exited_at.is_(None))).first() is not None  # fmt: skip

    def enter(
        self, conn: Connection, project_id: int, audience: str, person: str, at: datetime
    ) -> None:
        """A membership begins, and its `Audience Entered` waits in the outbox (one
        transaction: announced exactly when it happened)."""
        values = {"project_id": project_id, "audience": audience, "person": person,
                  "entered_at": at, "exited_at": None}  # fmt: skip
        conn.execute(members.insert().values(**values))
        conn.execute(outbox.insert().values(**values))

    def exit(
        self, conn: Connection, project_id: int, audience: str, person: str, at: datetime
    ) -> None:
        key = (members.c.project_id == project_id, members.c.audience == audience,
               members.c.person == person, members.c.exited_at.is_(None))  # fmt: skip
        entered = conn.execute(sa.select(members.c.entered_at).where(*key)).scalar()
        if entered is None:
            return
        conn.execute(members.update().where(*key).values(exited_at=at))
        conn.execute(outbox.insert().values(project_id=project_id, audience=audience,
                                            person=person, entered_at=entered, exited_at=at))  # fmt: skip

    def exit_all(self, conn: Connection, project_id: int, audience: str, at: datetime) -> None:
        rows = conn.execute(sa.select(members.c.person).where(
            members.c.project_id == project_id, members.c.audience == audience,
            members.c.exited_at.is_(None))).all()  # fmt: skip
        for row in rows:
            self.exit(conn, project_id, audience, row.person, at)

    # the outbox, drained into the Log

    def waiting(self, limit: int) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(outbox).order_by(outbox.c.id).limit(limit)).all())

    def announced(self, ids: list[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(outbox.delete().where(outbox.c.id.in_(ids)))

    # reads, for the API and the dashboard

    def members(self, project_id: int, audience: str, limit: int = 1000) -> list[Membership]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(members).where(
                members.c.project_id == project_id, members.c.audience == audience,
                members.c.exited_at.is_(None)).order_by(members.c.person).limit(limit)).all()  # fmt: skip
        return [Membership(r.audience, r.person, r.entered_at, r.exited_at) for r in rows]

    def sizes(self, project_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(members.c.audience, sa.func.count()).where(
                members.c.project_id == project_id, members.c.exited_at.is_(None)
            ).group_by(members.c.audience)).all()  # fmt: skip
        return {r[0]: int(r[1]) for r in rows}

    def of_person(self, project_id: int, person: str) -> list[Membership]:
        """A person's memberships, past ones too, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(members).where(
                members.c.project_id == project_id, members.c.person == person
            ).order_by(members.c.entered_at.desc())).all()  # fmt: skip
        return [Membership(r.audience, r.person, r.entered_at, r.exited_at) for r in rows]

    def erase(self, project_id: int, ids: list[str]) -> None:
        """An erased user's ids go from every audience table."""
        with self.engine.begin() as conn:
            conn.execute(
                counts.delete().where(counts.c.project_id == project_id, counts.c.who.in_(ids))
            )
            conn.execute(seen.delete().where(seen.c.project_id == project_id, seen.c.who.in_(ids)))
            conn.execute(members.delete().where(members.c.project_id == project_id,
                                                members.c.person.in_(ids)))  # fmt: skip
            conn.execute(outbox.delete().where(outbox.c.project_id == project_id,
                                               outbox.c.person.in_(ids)))  # fmt: skip
