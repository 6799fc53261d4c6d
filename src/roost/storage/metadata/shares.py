"""Read-only links to a project's report pages, for people without an account: a random token
in the URL (only its SHA-256 is stored, as sessions' are), revocable at once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.errors import BadRequest
from roost.storage.metadata import create_tables

MAX_LABEL = 100
MAX_SHARES = 100  # per project

schema = sa.MetaData()
shares = sa.Table(
    "shares",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("project_id", sa.Integer, nullable=False, index=True),
    sa.Column("label", sa.String(MAX_LABEL), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)


@dataclass(frozen=True)
class Share:
    id: int
    project_id: int
    label: str
    created_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Shares:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    def create(self, project_id: int, label: str) -> tuple[Share, str]:
        """A new link's share and its token (shown once: only its digest is kept)."""
        label = label.strip() or "shared link"
        if len(label) > MAX_LABEL:
            raise BadRequest(f"label: at most {MAX_LABEL} characters", field="label")
        if len(self.list(project_id)) >= MAX_SHARES:
            raise BadRequest(f"label: at most {MAX_SHARES} links per project", field="label")
        token = secrets.token_urlsafe(24)
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            result = conn.execute(
                shares.insert().values(
                    token_hash=_digest(token), project_id=project_id, label=label, created_at=now
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        return Share(int(key[0]), project_id, label, now), token

    def list(self, project_id: int) -> list[Share]:
        query = (
            sa.select(shares.c.id, shares.c.project_id, shares.c.label, shares.c.created_at)
            .where(shares.c.project_id == project_id)
            .order_by(shares.c.id)
        )
        with self.engine.connect() as conn:
            return [Share(*row) for row in conn.execute(query)]

    def revoke(self, project_id: int, share_id: int) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                shares.delete().where(shares.c.project_id == project_id, shares.c.id == share_id)
            )
        return bool(result.rowcount)

    def project_of(self, token: str) -> int | None:
        """The project a link's token shows; None for an unknown or revoked one."""
        if not token or len(token) > 100:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(shares.c.project_id).where(shares.c.token_hash == _digest(token))
            ).first()
        return int(row[0]) if row else None
