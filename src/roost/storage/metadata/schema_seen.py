"""The properties each event of a project has been seen with, and their types — what the
drift stage (pipeline/drift.py) compares new events with, and what a draft tracking plan is
made from. A row is written once, when a property is first seen; read whole at start."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from roost.storage.metadata import create_tables

schema = sa.MetaData()
seen = sa.Table(
    "seen_properties",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(255), primary_key=True),  # the event's name, or type:<call>
    sa.Column("property", sa.String(255), primary_key=True),  # "" for the event itself
    sa.Column("type", sa.String(10), nullable=False),  # JSON's: string, number, boolean, …
    sa.Column("first_seen", sa.DateTime, nullable=False),
)

Seen = tuple[int, str, str, str]  # project, label, property ("" for the label), type


class SeenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    def load(self) -> list[Seen]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(seen.c.project_id, seen.c.label, seen.c.property,
                                          seen.c.type)).all()  # fmt: skip
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def add(self, found: Iterable[Seen]) -> None:
        """Record what was seen for the first time: one transaction for a request's; row by
        row only when another node recorded one of them meanwhile."""
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [{"project_id": p, "label": label, "property": name, "type": kind,
                 "first_seen": now} for p, label, name, kind in found]  # fmt: skip
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(seen.insert(), rows)
        except IntegrityError:
            for row in rows:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(seen.insert().values(**row))
                except IntegrityError:
                    continue

    def of(self, project_id: int) -> dict[str, dict[str, str]]:
        """label → property → type, for a draft plan."""
        out: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(seen.c.label, seen.c.property, seen.c.type).where(
                seen.c.project_id == project_id).order_by(seen.c.label, seen.c.property)).all()  # fmt: skip
        for label, name, kind in rows:
            properties = out.setdefault(label, {})
            if name:
                properties[name] = kind
        return out
