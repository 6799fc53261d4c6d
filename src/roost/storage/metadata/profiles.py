"""Where profiles live: users' traits, identity links, groups and memberships.

A user's activity (first and last seen, event count) is not kept here: it is counted in the
Warehouse when asked, over the user's id and every id linked to it.

Tables in the metadata database (SQLAlchemy Core, so SQLite here and PostgreSQL in a
cluster), written only by the profiles consumer, together with its cursor on the Log, in one
transaction per batch: a batch is applied exactly once, whatever stops the process.
Upserts are written as delete-then-insert of the touched rows, which every SQL engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from roost.storage.metadata import create_tables, delete_row, replace_row

schema = sa.MetaData()

profiles = sa.Table(
    "profiles",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("traits", sa.Text, nullable=False),
)
identities = sa.Table(
    "identities",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),  # an anonymous or earlier id
    sa.Column("user_id", sa.String(255), nullable=False),
    # (project, user) and not user alone: with the project in the query SQLite otherwise
    # walks the primary key's (project, alias) index, a scan of the project per link
    sa.Index("ix_identities_project_user", "project_id", "user_id"),
)
group_traits = sa.Table(
    "group_traits",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("group_id", sa.String(255), primary_key=True),
    sa.Column("traits", sa.Text, nullable=False),
)
memberships = sa.Table(
    "memberships",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("group_id", sa.String(255), primary_key=True),
)
LINKS_CHANGED = "links-changed"  # a counter kept among the cursors
cursors = sa.Table(
    "consumer_cursors",
    schema,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("log_offset", sa.BigInteger, nullable=False),
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass
class Profile:
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass
class Changes:
    """What one batch changes; written in one transaction with the cursor."""

    profiles: dict[tuple[int, str], Profile | None] = field(
        default_factory=dict
    )  # None: merged away
    identities: dict[tuple[int, str], str] = field(default_factory=dict)
    groups: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    joined: set[tuple[int, str, str]] = field(default_factory=set)
    left: set[tuple[int, str, str]] = field(default_factory=set)


class ProfileStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    def cursor(self, consumer: str) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(cursors.c.log_offset).where(cursors.c.consumer == consumer)
            ).first()
        return int(row[0]) if row else 0

    # Reads, for the consumer (inside a batch) and the API

    def profile(self, conn: Connection, project_id: int, user_id: str) -> Profile | None:
        row = conn.execute(
            sa.select(profiles).where(
                profiles.c.project_id == project_id, profiles.c.user_id == user_id
            )
        ).first()
        if row is None:
            return None
        return Profile(_decode(row.traits))

    def resolve(self, conn: Connection, project_id: int, alias: str) -> str | None:
        row = conn.execute(
            sa.select(identities.c.user_id).where(
                identities.c.project_id == project_id, identities.c.alias == alias
            )
        ).first()
        return str(row[0]) if row else None

    def aliases_of(self, conn: Connection, project_id: int, user_id: str) -> list[str]:
        rows = conn.execute(
            sa.select(identities.c.alias).where(
                identities.c.project_id == project_id, identities.c.user_id == user_id
            )
        ).all()
        return sorted(r[0] for r in rows)  # sorted here: ORDER BY made SQLite scan (above)

    def all_identities(self) -> list[tuple[int, str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(identities.c.project_id, identities.c.alias, identities.c.user_id)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def group(self, conn: Connection, project_id: int, group_id: str) -> dict[str, Any] | None:
        row = conn.execute(
            sa.select(group_traits.c.traits).where(
                group_traits.c.project_id == project_id, group_traits.c.group_id == group_id
            )
        ).first()
        return _decode(row[0]) if row else None

    def groups_of(self, conn: Connection, project_id: int, user_id: str) -> list[str]:
        rows = conn.execute(
            sa.select(memberships.c.group_id)
            .where(memberships.c.project_id == project_id, memberships.c.user_id == user_id)
            .order_by(memberships.c.group_id)
        ).all()
        return [r[0] for r in rows]

    def members_of(self, conn: Connection, project_id: int, group_id: str) -> list[str]:
        """The users in a group (when its traits change, each of them may be affected)."""
        rows = conn.execute(
            sa.select(memberships.c.user_id).where(
                memberships.c.project_id == project_id, memberships.c.group_id == group_id
            )
        ).all()
        return [r[0] for r in rows]

    # The one write: a batch's changes and the cursor, together

    def apply(self, conn: Connection, consumer: str, offset: int, changes: Changes) -> None:
        for (project_id, user_id), profile in changes.profiles.items():
            if profile is None:
                delete_row(conn, profiles, project_id=project_id, user_id=user_id)
            else:
                encoded = _encode(profile.traits).decode()
                replace_row(conn, profiles, project_id=project_id, user_id=user_id, traits=encoded)
        for (project_id, alias), user_id in changes.identities.items():
            replace_row(conn, identities, project_id=project_id, alias=alias, user_id=user_id)
        for (project_id, group_id), group in changes.groups.items():
            encoded = _encode(group).decode()
            replace_row(
                conn, group_traits, project_id=project_id, group_id=group_id, traits=encoded
            )
        for project_id, user_id, group_id in changes.left:  # leaving wins over joining
            delete_row(conn, memberships, project_id=project_id, user_id=user_id, group_id=group_id)
        for project_id, user_id, group_id in changes.joined - changes.left:
            replace_row(
                conn, memberships, project_id=project_id, user_id=user_id, group_id=group_id
            )
        replace_row(conn, cursors, consumer=consumer, log_offset=offset)

    def erase(self, project_id: int, user_id: str) -> list[str]:
        """Forget a user: the profile, every id linked to it, its memberships. The ids it had."""
        with self.engine.begin() as conn:
            found = self.resolve(conn, project_id, user_id) or user_id  # a linked id finds it
            ids = [found, *self.aliases_of(conn, project_id, found)]
            delete_row(conn, profiles, project_id=project_id, user_id=found)
            conn.execute(
                identities.delete().where(
                    identities.c.project_id == project_id, identities.c.user_id == found
                )
            )
            conn.execute(
                memberships.delete().where(
                    memberships.c.project_id == project_id, memberships.c.user_id == found
                )
            )
            self._links_changed(conn)
        return sorted(set(ids) | {user_id})

    def reset(self, consumer: str) -> None:
        """Forget every profile, so the consumer rebuilds them from the Log."""
        with self.engine.begin() as conn:
            for table in (profiles, identities, group_traits, memberships):
                conn.execute(table.delete())
            conn.execute(cursors.delete().where(cursors.c.consumer == consumer))
            self._links_changed(conn)

    def links_changes(self) -> int:
        """How many times links were removed outside the consumer (an erasure, a rebuild):
        a worker in another process copies the links to the Warehouse again when it moves."""
        return self.cursor(LINKS_CHANGED)

    def _links_changed(self, conn: Connection) -> None:
        now = conn.execute(
            sa.select(cursors.c.log_offset).where(cursors.c.consumer == LINKS_CHANGED)
        ).scalar()
        replace_row(conn, cursors, consumer=LINKS_CHANGED, log_offset=int(now or 0) + 1)
