"""Dashboard accounts: people who log in, their role in a workspace, and their sessions.

Passwords are hashed with argon2id (slow on purpose: unlike keys, people pick guessable
passwords). A session is a random token in a cookie; only its SHA-256 is stored, with the
CSRF token every form of that session must echo. Logging out deletes the row, so a copied
cookie stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.errors import BadRequest, NotFound
from roost.storage.metadata import create_tables, metadata, workspaces

ROLES = ("owner", "member", "viewer")
MIN_PASSWORD = 10

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)

_hasher = argon2.PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    id: int
    workspace_id: int
    workspace: str
    email: str
    role: str

    @property
    def can_configure(self) -> bool:
        """Owners and members change settings (keys, plans, destinations); viewers only read."""
        return self.role in ("owner", "member")


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user_query() -> sa.Select[Any]:
    return sa.select(
        users.c.id,
        users.c.workspace_id,
        workspaces.c.name.label("workspace"),
        users.c.email,
        users.c.role,
        users.c.password_hash,
    ).select_from(users.join(workspaces, users.c.workspace_id == workspaces.c.id))


def _user(row: Any) -> User:
    return User(row.id, row.workspace_id, row.workspace, row.email, row.role)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"password: must be at least {MIN_PASSWORD} characters", field="password")


class Accounts:
    def __init__(self, engine: Engine, session_days: float = 14.0) -> None:
        self.engine = engine
        self.session_lifetime = timedelta(days=session_days)
        create_tables(engine, metadata, [users, sessions])

    def create_user(self, workspace_id: int, email: str, password: str, role: str) -> User:
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise BadRequest("email: must be an email address", field="email")
        if role not in ROLES:
            raise BadRequest(f"role: must be one of {', '.join(ROLES)}", field="role")
        check_password(password)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
                raise BadRequest(f"email: {email!r} already has an account", field="email")
            conn.execute(
                users.insert().values(
                    workspace_id=workspace_id,
                    email=email,
                    role=role,
                    password_hash=_hasher.hash(password),
                    created_at=_now(),
                )
            )
        return self.user(email)

    def user(self, email: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(_user_query().where(users.c.email == email.strip().lower())).first()
        if row is None:
            raise NotFound(f"no user with email {email!r}", field="email")
        return _user(row)

    def list_users(self, workspace_id: int | None = None) -> list[User]:
        query = _user_query().order_by(users.c.id)
        if workspace_id is not None:
            query = query.where(users.c.workspace_id == workspace_id)
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(query).all()]

    def set_role(self, email: str, role: str) -> User:
        if role not in ROLES:
            raise BadRequest(f"role: must be one of {', '.join(ROLES)}", field="role")
        user = self.user(email)
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user.id).values(role=role))
        return self.user(email)

    def set_password(self, email: str, password: str) -> None:
        """A new password, and every session of the user ended."""
        check_password(password)
        user = self.user(email)
        with self.engine.begin() as conn:
            conn.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(password_hash=_hasher.hash(password))
            )
            conn.execute(sessions.delete().where(sessions.c.user_id == user.id))

    def delete_user(self, email: str) -> None:
        user = self.user(email)
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.user_id == user.id))
            conn.execute(users.delete().where(users.c.id == user.id))

    def authenticate(self, email: str, password: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(_user_query().where(users.c.email == email.strip().lower())).first()
        try:
            _hasher.verify(row.password_hash if row is not None else _DUMMY, password)
        except argon2.exceptions.VerificationError:
            return None
        except argon2.exceptions.InvalidHashError:
            return None
        return _user(row) if row is not None else None

    def start_session(self, user: User) -> tuple[str, Session]:
        """A new session: the token for the cookie (never stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = _now()
        found = Session(user, secrets.token_urlsafe(32), now + self.session_lifetime)
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires_at < now))
            conn.execute(
                sessions.insert().values(
                    token_hash=_digest(token),
                    user_id=user.id,
                    csrf=found.csrf,
                    created_at=now,
                    expires_at=found.expires_at,
                )
            )
        return token, found

    def session(self, token: str) -> Session | None:
        """The live session of a cookie's token; None when unknown, ended or expired."""
        query = (
            _user_query()
            .add_columns(sessions.c.csrf, sessions.c.expires_at)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(sessions.c.token_hash == _digest(token), sessions.c.expires_at > _now())
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Session(_user(row), row.csrf, row.expires_at)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_hash == _digest(token)))
