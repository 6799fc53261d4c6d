"""The metadata store: workspaces, projects, keys and visitor salts, in SQLAlchemy Core.

Written against SQLAlchemy's portable Core so the same code runs on SQLite (the embedded
default) and PostgreSQL (a cluster). Only a SHA-256 of each key is stored: keys are long
random strings, so a fast hash is as safe as a slow one and keeps lookups cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.errors import BadRequest, NotFound
from roost.model import EVENT_TYPES, KEY_KINDS, KEY_PREFIX, PLANS, Key, Project, Workspace

metadata = sa.MetaData()

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("plan", sa.String(20), nullable=False),
    sa.Column("monthly_budget", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("store_ip", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("label", sa.String(100), nullable=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("allowed_types", sa.Text, nullable=True),
    sa.Column("rate", sa.Float, nullable=True),
    sa.Column("burst", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    sa.Column("hourly", sa.Float, nullable=True),  # events per hour, beside the rate
    # a jwt-secret's own value: verifying a token's HMAC needs it (every other kind: a hash)
    sa.Column("secret", sa.Text, nullable=True),
)

salts = sa.Table(
    "salts",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("salt", sa.String(64), nullable=False),
)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


SCHEMA_LOCK = 0x526F6F73  # "Roos": serializes table creation between nodes starting at once


def create_tables(
    engine: Engine, schema: sa.MetaData, tables: list[sa.Table] | None = None
) -> None:
    """CREATE TABLE IF NOT EXISTS, once even when several nodes start together: PostgreSQL's
    check-then-create is not atomic, so the creation holds a transaction-level lock."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        schema.create_all(conn, tables=tables)


def add_columns(engine: Engine, table: sa.Table) -> None:
    """ALTER TABLE ADD COLUMN for the table's nullable columns a store made by an older
    Roost lacks (the only kind of change the metadata schema has needed)."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    missing = [c for c in table.columns if c.name not in present]
    if not missing:
        return
    with engine.begin() as conn:
        for column in missing:
            assert column.nullable, f"{table.name}.{column.name}: a new column must be nullable"
            kind = column.type.compile(dialect=engine.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


def widen_columns(engine: Engine, table: sa.Table) -> None:
    """ALTER COLUMN … TYPE TEXT for the table's Text columns an older Roost made with a
    length (PostgreSQL enforces it; SQLite does not)."""
    if engine.dialect.name != "postgresql":
        return
    bounded = {
        c["name"]
        for c in sa.inspect(engine).get_columns(table.name)
        if getattr(c["type"], "length", None) is not None
    }
    wider = [c.name for c in table.columns if c.name in bounded and type(c.type) is sa.Text]
    if not wider:
        return
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        for name in wider:
            conn.execute(sa.text(f"ALTER TABLE {table.name} ALTER COLUMN {name} TYPE TEXT"))


class Metadata:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        create_tables(self.engine, metadata)
        add_columns(self.engine, keys)

    def close(self) -> None:
        self.engine.dispose()

    # Workspaces and projects

    def create_workspace(
        self, name: str, plan: str, monthly_budget: int | None = None
    ) -> Workspace:
        if plan not in PLANS:
            raise BadRequest(
                f"plan: must be one of {', '.join(PLANS)} (got {plan!r})", field="plan"
            )
        with self.engine.begin() as conn:
            if conn.execute(sa.select(workspaces.c.id).where(workspaces.c.name == name)).first():
                raise BadRequest(f"workspace {name!r} already exists", field="name")
            row_id = conn.execute(
                workspaces.insert().values(
                    name=name, plan=plan, monthly_budget=monthly_budget, created_at=_now()
                )
            ).inserted_primary_key
        assert row_id is not None
        return Workspace(int(row_id[0]), name, plan, monthly_budget)

    def workspace(self, name: str) -> Workspace:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(workspaces).where(workspaces.c.name == name)).first()
        if row is None:
            raise NotFound(f"no workspace named {name!r}", field="workspace")
        return Workspace(row.id, row.name, row.plan, row.monthly_budget)

    def list_workspaces(self) -> list[Workspace]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(workspaces).order_by(workspaces.c.id)).all()
        return [Workspace(r.id, r.name, r.plan, r.monthly_budget) for r in rows]

    def update_workspace(
        self, name: str, *, plan: str | None = None, monthly_budget: int | bool | None = False
    ) -> Workspace:
        """Change a workspace's plan and/or budget (`monthly_budget=None` removes the budget)."""
        values: dict[str, Any] = {}
        if plan is not None:
            if plan not in PLANS:
                raise BadRequest(f"plan: must be one of {', '.join(PLANS)}", field="plan")
            values["plan"] = plan
        if monthly_budget is not False:
            values["monthly_budget"] = monthly_budget
        ws = self.workspace(name)
        if values:
            with self.engine.begin() as conn:
                conn.execute(workspaces.update().where(workspaces.c.id == ws.id).values(**values))
        return self.workspace(name)

    def create_project(
        self, workspace_id: int, slug: str, name: str | None = None, *, store_ip: bool = False
    ) -> Project:
        if not _valid_slug(slug):
            raise BadRequest(
                "slug: must be 1-100 characters of a-z, 0-9, '-', '_' or '.'", field="slug"
            )
        with self.engine.begin() as conn:
            if conn.execute(sa.select(projects.c.id).where(projects.c.slug == slug)).first():
                raise BadRequest(f"project {slug!r} already exists", field="slug")
            result = conn.execute(
                projects.insert().values(
                    workspace_id=workspace_id,
                    slug=slug,
                    name=name or slug,
                    store_ip=store_ip,
                    created_at=_now(),
                )
            )
        assert result.inserted_primary_key is not None
        return Project(
            int(result.inserted_primary_key[0]), workspace_id, slug, name or slug, store_ip
        )

    def project(self, slug: str) -> Project:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.slug == slug)).first()
        if row is None:
            raise NotFound(f"no project with slug {slug!r}", field="project")
        return Project(row.id, row.workspace_id, row.slug, row.name, bool(row.store_ip))

    def list_projects(self) -> list[Project]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.id)).all()
        return [Project(r.id, r.workspace_id, r.slug, r.name, bool(r.store_ip)) for r in rows]

    def projects_of(self, workspace_id: int) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(projects.c.id).where(projects.c.workspace_id == workspace_id)
            ).all()
        return [r.id for r in rows]

    def ensure_default(self, plan: str) -> tuple[Workspace, Project, bool]:
        """The default workspace and project, made on first start; True if just made."""
        existing = self.list_projects()
        if existing:
            first = next((p for p in existing if p.slug == "default"), existing[0])
            ws = next(w for w in self.list_workspaces() if w.id == first.workspace_id)
            return ws, first, False
        ws = self.create_workspace("default", plan)
        return ws, self.create_project(ws.id, "default", "Default project"), True

    # Keys

    def create_key(
        self,
        project_slug: str,
        kind: str,
        *,
        label: str | None = None,
        allowed_types: Sequence[str] | None = None,
        rate: float | None = None,
        burst: float | None = None,
        hourly: float | None = None,
    ) -> tuple[Key, str]:
        """Make a key and return it with its raw value, which is never stored or shown again."""
        if kind not in KEY_KINDS:
            raise BadRequest(
                f"kind: must be one of {', '.join(KEY_KINDS)} (got {kind!r})", field="kind"
            )
        for t in allowed_types or ():
            if t not in EVENT_TYPES:
                raise BadRequest(
                    f"allowed_types: {t!r} is not one of {', '.join(EVENT_TYPES)}",
                    field="allowed_types",
                )
        if rate is not None and rate <= 0:
            raise BadRequest("rate: must be a positive number of events per second", field="rate")
        if hourly is not None and hourly <= 0:
            raise BadRequest("hourly: must be a positive number of events per hour", field="hourly")
        project = self.project(project_slug)
        raw = KEY_PREFIX[kind] + secrets.token_urlsafe(24)
        key_id = "key_" + secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(
                keys.insert().values(
                    id=key_id,
                    project_id=project.id,
                    kind=kind,
                    label=label,
                    hash=hash_key(raw),
                    prefix=raw[:8],
                    allowed_types=msgspec.json.encode(list(allowed_types)).decode()
                    if allowed_types
                    else None,
                    rate=rate,
                    burst=burst if burst is not None else (rate * 5 if rate else None),
                    created_at=_now(),
                    secret=raw if kind == "jwt-secret" else None,
                    hourly=hourly,
                )
            )
        key = self.find_key(raw)
        assert key is not None
        return key, raw

    def _key_query(self) -> sa.Select[Any]:
        return sa.select(
            keys,
            projects.c.slug.label("project_slug"),
            projects.c.store_ip,
            projects.c.workspace_id,
            workspaces.c.plan,
            workspaces.c.monthly_budget,
        ).select_from(
            keys.join(projects, keys.c.project_id == projects.c.id).join(
                workspaces, projects.c.workspace_id == workspaces.c.id
            )
        )

    def find_key(self, raw: str) -> Key | None:
        """The key for a raw value, revoked or not; None if it was never issued."""
        with self.engine.connect() as conn:
            row = conn.execute(self._key_query().where(keys.c.hash == hash_key(raw))).first()
        return _key_from_row(row) if row is not None else None

    def jwt_secrets(self, project_slug: str) -> list[tuple[Key, str]]:
        """The project's live jwt-secrets, each with its value (tokens/verify)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._key_query().where(
                    projects.c.slug == project_slug,
                    keys.c.kind == "jwt-secret",
                    keys.c.revoked_at.is_(None),
                )
            ).all()
        return [(_key_from_row(r), str(r.secret)) for r in rows if r.secret]

    def list_keys(self, project_slug: str | None = None) -> list[Key]:
        query = self._key_query().order_by(keys.c.created_at)
        if project_slug is not None:
            query = query.where(projects.c.slug == project_slug)
        with self.engine.connect() as conn:
            return [_key_from_row(r) for r in conn.execute(query).all()]

    def revoke_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                keys.update()
                .where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            if result.rowcount == 0:
                exists = conn.execute(sa.select(keys.c.id).where(keys.c.id == key_id)).first()
                if exists is None:
                    raise NotFound(f"no key with id {key_id!r}", field="id")

    def delete_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(keys.delete().where(keys.c.id == key_id))

    # Visitor salts

    def salt_for(self, day: str) -> bytes:
        """The salt of a UTC day, made on first use; salts of earlier days are deleted."""
        with self.engine.begin() as conn:
            conn.execute(salts.delete().where(salts.c.day < day))
            row = conn.execute(sa.select(salts.c.salt).where(salts.c.day == day)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(salts.insert().values(day=day, salt=secrets.token_hex(32)))
                except sa.exc.IntegrityError:
                    pass  # another process made it first: use theirs
                row = conn.execute(sa.select(salts.c.salt).where(salts.c.day == day)).first()
        assert row is not None
        return bytes.fromhex(row.salt)

    def salt_days(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.day for r in conn.execute(sa.select(salts.c.day)).all()]


def delete_row(conn: sa.Connection, table: sa.Table, **key: Any) -> None:
    """Delete the row with this primary key (given by column name)."""
    conn.execute(table.delete().where(*(table.c[name] == value for name, value in key.items())))


def replace_row(conn: sa.Connection, table: sa.Table, **values: Any) -> None:
    """Insert a row, replacing the one with the same primary key: an upsert every SQL engine
    runs the same way (SQLite and PostgreSQL spell ON CONFLICT differently in SQLAlchemy)."""
    delete_row(conn, table, **{c.name: values[c.name] for c in table.primary_key.columns})
    conn.execute(table.insert().values(**values))


def _key_from_row(row: Any) -> Key:
    return Key(
        id=row.id,
        kind=row.kind,
        label=row.label,
        prefix=row.prefix,
        project_id=row.project_id,
        project_slug=row.project_slug,
        workspace_id=row.workspace_id,
        plan=row.plan,
        monthly_budget=row.monthly_budget,
        store_ip=bool(row.store_ip),
        allowed_types=tuple(msgspec.json.decode(row.allowed_types)) if row.allowed_types else None,
        rate=row.rate,
        burst=row.burst,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        hourly=row.hourly,
    )


def _valid_slug(slug: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
    return 0 < len(slug) <= 100 and set(slug) <= allowed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")  # an erased profile is zeroed, not freed
    cursor.close()
