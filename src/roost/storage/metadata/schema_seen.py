"""The properties each event of a project has been seen with, and their types — what the
drift stage (pipeline/drift.py) compares new events with, and what a draft tracking plan is
made from — and the first time of each other drift warning (a type changed, too many values,
properties or event names). A row is written once; read whole at start; the weekly digest
and the tracking plan page list what came since a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from roost.pipeline.drift import Noticed
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

noticed = sa.Table(
    "schema_warnings",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(255), primary_key=True),  # "" for the project
    sa.Column("property", sa.String(255), primary_key=True),  # "" for the event
    sa.Column("code", sa.String(20), primary_key=True),  # type_changed, many_values, …
    sa.Column("detail", sa.String(40), primary_key=True),  # "number → string", the bound
    sa.Column("first_seen", sa.DateTime, nullable=False),
)

MAX_LISTED = 10_000  # drift items a listing gives at most (a project may see 200,000 properties)

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

    def noticed(self) -> list[Noticed]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(noticed.c.project_id, noticed.c.label, noticed.c.property,
                                          noticed.c.code, noticed.c.detail)).all()  # fmt: skip
        return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def add(self, found: Iterable[Seen], warned: Iterable[Noticed] = ()) -> None:
        """Record what was seen, and the warnings given, for the first time: one transaction
        for a request's; row by row only when another node recorded one of them meanwhile."""
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [{"project_id": p, "label": label, "property": name, "type": kind,
                 "first_seen": now} for p, label, name, kind in found]  # fmt: skip
        notes = [{"project_id": p, "label": label, "property": name, "code": code,
                  "detail": detail[:40], "first_seen": now}
                 for p, label, name, code, detail in warned]  # fmt: skip
        try:
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(seen.insert(), rows)
                if notes:
                    conn.execute(noticed.insert(), notes)
        except IntegrityError:
            for table, row in [*((seen, r) for r in rows), *((noticed, n) for n in notes)]:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(table.insert().values(**row))
                except IntegrityError:
                    continue

    def since(
        self,
        project_id: int,
        start: datetime,
        until: datetime | None = None,
        limit: int = MAX_LISTED,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """The drift first seen in [start, until) (naive UTC), oldest first (or newest), at
        most `limit` items: new events and properties, and the other warnings."""

        def chosen(table: sa.Table, *columns: sa.Column[Any]) -> sa.Select[Any]:
            at = table.c.first_seen
            query = sa.select(*columns, at).where(table.c.project_id == project_id, at >= start)
            if until is not None:
                query = query.where(at < until)
            return query.order_by(at.desc() if newest_first else at).limit(limit)

        with self.engine.connect() as conn:
            found = conn.execute(chosen(seen, seen.c.label, seen.c.property, seen.c.type)).all()
            warned = conn.execute(chosen(noticed, noticed.c.label, noticed.c.property,
                                         noticed.c.code, noticed.c.detail)).all()  # fmt: skip
        items = [
            {"code": "new_property" if name else "new_event", "event": label,
             "property": name or None, "detail": kind if name else None, "first_seen": at}
            for label, name, kind, at in found
        ] + [
            {"code": code, "event": label or None, "property": name or None, "detail": detail,
             "first_seen": at}
            for label, name, code, detail, at in warned
        ]  # fmt: skip
        items.sort(key=lambda i: (i["first_seen"], i["event"] or "", i["property"] or ""),
                   reverse=newest_first)  # fmt: skip
        return items[:limit]

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
