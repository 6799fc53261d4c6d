"""The project a key-less tracker names: Plausible by a domain, Umami by a website id, either
by the project's slug (docs/wire-contracts.md, dialects 6 and 7).

Such a request carries no key, so it is given one made for its project: a write key that may
send pages and custom events only, rate-limited per client address. What names a project is
read for all projects at once and kept for `key_cache_seconds`, so a flood of unknown names
costs one lookup per period, as unknown keys do (storage/metadata/keyring.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa

from roost.errors import Forbidden
from roost.model import Key
from roost.storage.metadata import Metadata, projects, workspaces
from roost.storage.metadata.settings import ProjectSettings

ALLOWED = ("page", "track")  # only page and custom events arrive without a key
_MADE = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Site:
    key: Key
    domains: tuple[str, ...]


@dataclass(frozen=True)
class Known:
    by_domain: dict[str, Site]
    by_website: dict[str, Site]
    by_slug: dict[str, Site]


class Sites:
    def __init__(
        self,
        metadata: Metadata,
        settings: ProjectSettings,
        ttl: float,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata = metadata
        self.settings = settings
        self.ttl = ttl
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._known: tuple[Known, float] | None = None

    def find(self, name: str | None, by: str, client: str | None, origin: str | None) -> Key | None:
        """The key for a request naming `name` (by "domain" or "website", or the slug), its
        rate limit the client's own; None if no project is named so. An Origin that is not one
        of the project's domains (when it has any) is refused."""
        if not name:
            return None
        known = self._load()
        table = known.by_domain if by == "domain" else known.by_website
        site = table.get(name.lower() if by == "domain" else name) or known.by_slug.get(name)
        if site is None:
            return None
        if origin and site.domains and not _allowed(origin, site.domains):
            raise Forbidden(
                f"Origin: {origin[:200]!r} is not one of the project's domains", field="Origin"
            )
        return replace(site.key, id=f"{site.key.id}:{client or '-'}")

    def stale(self) -> bool:
        """Whether the next `find` would read the metadata store (the caller may `refresh`
        in a worker thread first, keeping the event loop free of it)."""
        return self._known is None or self._known[1] <= self.clock()

    def refresh(self) -> None:
        self._load()

    def _load(self) -> Known:
        now = self.clock()
        if self._known is not None and self._known[1] > now:
            return self._known[0]
        settings = self.settings.sites()
        known = Known({}, {}, {})
        for made in project_keys(self.metadata, "site"):
            setting = settings.get(made.project_id, {})
            key = replace(
                made, allowed_types=ALLOWED, rate=self.rate, burst=self.burst, hourly=None
            )
            site = Site(key, tuple(setting.get("domains", ())))
            known.by_slug[key.project_slug] = site
            for domain in site.domains:
                known.by_domain[domain] = site
            if setting.get("website_id"):
                known.by_website[setting["website_id"]] = site
        self._known = (known, now + self.ttl)
        return known


def project_keys(metadata: Metadata, label: str, project_id: int | None = None) -> list[Key]:
    """A write key made for each project (or one), for what arrives without a key of its own:
    a key-less tracker's events, a quarantine's replay. No limits of its own (the caller sets
    them); the workspace's plan and budget apply."""
    query = sa.select(
        projects.c.id, projects.c.slug, projects.c.store_ip, projects.c.workspace_id,
        workspaces.c.plan, workspaces.c.monthly_budget,
    ).select_from(projects.join(workspaces, projects.c.workspace_id == workspaces.c.id))  # fmt: skip
    if project_id is not None:
        query = query.where(projects.c.id == project_id)
    with metadata.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Key(id=f"{label}:{row.id}", kind="write", label=label, prefix="", project_id=row.id,
            project_slug=row.slug, workspace_id=row.workspace_id, plan=row.plan,
            monthly_budget=row.monthly_budget, store_ip=bool(row.store_ip), allowed_types=None,
            rate=0.0, burst=0.0, created_at=_MADE, revoked_at=None, hourly=0.0)
        for row in rows
    ]  # fmt: skip


def _allowed(origin: str, domains: tuple[str, ...]) -> bool:
    """The Origin's host is one of the domains or under one (www.shop.test for shop.test)."""
    try:
        host = (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return False
    return any(host == d or host.endswith("." + d) for d in domains)
