"""A project's transformations, storage-consent setting, goals, time zone and site (the
domains and website id key-less trackers name it by), as JSON documents per project.

Each is checked when it is set (steps compiled, entry points found), so a mistake is refused
with the field it is in, never discovered on the hot path.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.errors import BadRequest
from roost.pipeline.consent import ACTIONS, CARRY_CONSENT, DIALECTS, StorageConsent
from roost.pipeline.steps import Step, compile_steps
from roost.storage.metadata import create_tables, delete_row, replace_row
from roost.storage.metadata.audiences import Audience, check_audiences
from roost.storage.metadata.goals import Goal, check_goals

schema = sa.MetaData()
settings = sa.Table(
    "project_settings",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


def check_consent(raw: Any, where: str = "consent") -> StorageConsent:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: must be a table with categories and action", field=where)
    unknown = set(raw) - {"categories", "action", "dialects"}
    if unknown:
        raise BadRequest(
            f"{where}.{min(unknown)}: unknown setting", field=f"{where}.{min(unknown)}"
        )
    categories = raw.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, str) and c for c in categories):
        raise BadRequest(
            f"{where}.categories: must be a list of category names", field=f"{where}.categories"
        )
    action = raw.get("action", "strip")
    if action not in ACTIONS:
        raise BadRequest(
            f"{where}.action: must be one of {', '.join(ACTIONS)} (got {action!r})",
            field=f"{where}.action",
        )
    dialects = raw.get("dialects", list(CARRY_CONSENT))
    if not isinstance(dialects, list) or not all(d in DIALECTS for d in dialects):
        raise BadRequest(
            f"{where}.dialects: must be a list of dialects ({', '.join(DIALECTS)}) the rule "
            "applies to",
            field=f"{where}.dialects",
        )
    return StorageConsent(tuple(categories), action, tuple(dialects))


MAX_VIEWS = 30
VIEW_FIELDS = {"name": 100, "window": 20, "mode": 10, "start": 200, "return": 200,
               "retention_period": 10}  # fmt: skip


def check_view(raw: Any) -> dict[str, Any]:
    """A saved view: a name, 0 or 2–8 funnel steps (event names or /paths), and the page's
    other inputs as text."""
    if not isinstance(raw, dict):
        raise BadRequest("view: must be a table", field="view")
    view: dict[str, Any] = {}
    for field, longest in VIEW_FIELDS.items():
        value = raw.get(field, "")
        if not isinstance(value, str) or len(value) > longest:
            raise BadRequest(f"{field}: must be text of at most {longest} characters", field=field)
        view[field] = value.strip()
    if not view["name"]:
        raise BadRequest("name: a view needs a name", field="name")
    steps = raw.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, str) and len(s) <= 200 for s in steps):
        raise BadRequest("steps: must be a list of event names or /paths", field="steps")
    steps = [s.strip() for s in steps if s.strip()]
    if len(steps) == 1 or len(steps) > 8:
        raise BadRequest("steps: a funnel has 2 to 8 steps (or none)", field="steps")
    view["steps"] = steps
    return view


TRANSFORMATION_ERRORS = ("store", "quarantine")


def check_transformation_errors(raw: Any, where: str = "transformation_errors") -> str:
    if raw not in TRANSFORMATION_ERRORS:
        raise BadRequest(f"{where}: must be one of {', '.join(TRANSFORMATION_ERRORS)}", field=where)
    return str(raw)


def check_timezone(raw: Any, where: str = "timezone") -> str:
    if not isinstance(raw, str) or not raw:
        raise BadRequest(f"{where}: must be an IANA time zone such as Europe/Berlin", field=where)
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(
            f"{where}: unknown time zone {raw!r} (an IANA name such as Europe/Berlin)", field=where
        ) from None
    return raw


MAX_DOMAINS = 50
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*$"
)
_WEBSITE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_site(raw: Any, where: str = "site") -> dict[str, Any]:
    """`{domains: [host, …], website_id: str}`: what Plausible's and Umami's trackers name a
    project by (docs/wire-contracts.md), each optional."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: must be a table with domains and/or website_id", field=where)
    unknown = sorted(set(raw) - {"domains", "website_id"})
    if unknown:
        raise BadRequest(f"{where}.{unknown[0]}: unknown (known: domains, website_id)",
                         field=f"{where}.{unknown[0]}")  # fmt: skip
    site: dict[str, Any] = {}
    domains = raw.get("domains")
    if domains is not None:
        if not isinstance(domains, list) or len(domains) > MAX_DOMAINS:
            raise BadRequest(f"{where}.domains: must be a list of at most {MAX_DOMAINS} host names",
                             field=f"{where}.domains")  # fmt: skip
        for i, domain in enumerate(domains):
            if not isinstance(domain, str) or not _HOST.match(domain.lower()):
                raise BadRequest(f"{where}.domains[{i}]: must be a host name such as shop.example",
                                 field=f"{where}.domains[{i}]")  # fmt: skip
        site["domains"] = sorted({d.lower() for d in domains})
    website = raw.get("website_id")
    if website is not None:
        if not isinstance(website, str) or not _WEBSITE.match(website):
            raise BadRequest(f"{where}.website_id: must be 1–100 letters, digits, - or _",
                             field=f"{where}.website_id")  # fmt: skip
        site["website_id"] = website
    return site


class ProjectSettings:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    def _get(self, project_id: int, name: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(settings.c.value).where(
                    settings.c.project_id == project_id, settings.c.name == name
                )
            ).first()
        return msgspec.json.decode(row[0]) if row else None

    def _set(self, project_id: int, name: str, value: Any) -> None:
        with self.engine.begin() as conn:
            if value is None:
                delete_row(conn, settings, project_id=project_id, name=name)
                return
            replace_row(
                conn,
                settings,
                project_id=project_id,
                name=name,
                value=msgspec.json.encode(value).decode(),
                updated_at=datetime.now(UTC).replace(tzinfo=None),
            )

    def transformations(self, project_id: int) -> list[dict[str, Any]]:
        return self._get(project_id, "transformations") or []

    def set_transformations(self, project_id: int, steps: list[dict[str, Any]]) -> None:
        compile_steps(steps)
        self._set(project_id, "transformations", steps or None)

    def steps(self, project_id: int) -> list[Step]:
        return compile_steps(self.transformations(project_id))

    def transformation_errors(self, project_id: int) -> str:
        """What becomes of an event a transformation fails on: `store` (as it was before the
        first step, the error noted) or `quarantine` (held until replayed)."""
        value = self._get(project_id, "transformation_errors")
        return value if value in TRANSFORMATION_ERRORS else "store"

    def set_transformation_errors(self, project_id: int, value: str | None) -> None:
        if value is not None:
            check_transformation_errors(value)
        self._set(project_id, "transformation_errors", None if value in (None, "store") else value)

    def timezone(self, project_id: int) -> str:
        """The zone the dashboard reports the project's days and hours in (UTC unless set)."""
        value = self._get(project_id, "timezone")
        return value if isinstance(value, str) else "UTC"

    def set_timezone(self, project_id: int, value: str | None) -> None:
        if value is not None:
            check_timezone(value)
        self._set(project_id, "timezone", None if value in (None, "UTC") else value)

    def views(self, project_id: int) -> list[dict[str, Any]]:
        """The product page's saved views (a funnel and a retention grid's inputs, named)."""
        value = self._get(project_id, "views")
        return value if isinstance(value, list) else []

    def save_view(self, project_id: int, raw: Any) -> None:
        """Keep a view (one of the same name is replaced)."""
        view = check_view(raw)
        kept = [v for v in self.views(project_id) if v.get("name") != view["name"]]
        if len(kept) >= MAX_VIEWS:
            raise BadRequest(f"name: at most {MAX_VIEWS} saved views", field="name")
        self._set(project_id, "views", [*kept, view])

    def delete_view(self, project_id: int, name: str) -> bool:
        views = self.views(project_id)
        kept = [v for v in views if v.get("name") != name]
        self._set(project_id, "views", kept or None)
        return len(kept) < len(views)

    def goals(self, project_id: int) -> list[Goal]:
        return check_goals(self._get(project_id, "goals") or [])

    def set_goals(self, project_id: int, raw: list[dict[str, Any]]) -> None:
        found = check_goals(raw)
        self._set(project_id, "goals", [g.spec() for g in found] or None)

    def consent(self, project_id: int) -> dict[str, Any] | None:
        value = self._get(project_id, "consent")
        return value if isinstance(value, dict) else None

    def set_consent(self, project_id: int, value: dict[str, Any] | None) -> None:
        if value is not None:
            check_consent(value)
        self._set(project_id, "consent", value if value and value.get("categories") else None)

    def storage_consent(self, project_id: int) -> StorageConsent:
        value = self.consent(project_id)
        return check_consent(value) if value else StorageConsent()

    def site(self, project_id: int) -> dict[str, Any]:
        value = self._get(project_id, "site")
        return value if isinstance(value, dict) else {}

    def sites(self) -> dict[int, dict[str, Any]]:
        """Every project's site setting (storage/metadata/sites.py reads them all at once)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(settings.c.project_id, settings.c.value).where(settings.c.name == "site")
            ).all()
        return {int(r.project_id): msgspec.json.decode(r.value) for r in rows}

    def set_site(self, project_id: int, raw: Any) -> None:
        site = check_site(raw) if raw is not None else {}
        self.check_site_free(project_id, site)
        self._set(project_id, "site", site or None)

    def check_site_free(self, project_id: int, site: dict[str, Any], where: str = "site") -> None:
        """A domain or website id names one project: another's is refused."""
        for other, theirs in self.sites().items():
            if other == project_id:
                continue
            for i, domain in enumerate(site.get("domains", [])):
                if domain in theirs.get("domains", []):
                    raise BadRequest(f"{where}.domains[{i}]: {domain} is another project's domain",
                                     field=f"{where}.domains[{i}]")  # fmt: skip
            if site.get("website_id") and site.get("website_id") == theirs.get("website_id"):
                raise BadRequest(f"{where}.website_id: is another project's website id",
                                 field=f"{where}.website_id")  # fmt: skip

    def audiences(self, project_id: int) -> list[Audience]:
        return check_audiences(self._get(project_id, "audiences") or [])

    def set_audiences(self, project_id: int, raw: list[dict[str, Any]] | None) -> None:
        found = check_audiences(raw or [])
        self._set(project_id, "audiences", [a.spec() for a in found] or None)

    def all_audiences(self) -> dict[int, list[Audience]]:
        """Every project's audiences (the audiences consumer reads them all at once)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(settings.c.project_id, settings.c.value).where(
                    settings.c.name == "audiences"
                )
            ).all()
        return {int(r.project_id): check_audiences(msgspec.json.decode(r.value)) for r in rows}


class AudienceDefinitions:
    """Every project's audiences, read again at most every `ttl` seconds (the audiences
    consumer asks on every step and every wait)."""

    def __init__(self, settings: ProjectSettings, ttl: float) -> None:
        self.settings = settings
        self.ttl = ttl
        self._read: tuple[float, dict[int, list[Audience]]] = (float("-inf"), {})

    def __call__(self) -> dict[int, list[Audience]]:
        at, found = self._read
        now = time.monotonic()
        if now - at >= self.ttl:
            found = self.settings.all_audiences()
            self._read = (now, found)
        return found

    def forget(self) -> None:
        """Read them again at the next call (a definition was just changed here)."""
        self._read = (float("-inf"), {})
