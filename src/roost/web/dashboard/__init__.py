"""The dashboard: server-rendered pages behind a login, on the same reports as the API."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute

from roost.web.dashboard import auth, pages, scripts, settings

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    return [*auth.routes(), *pages.routes(), *settings.routes(), *scripts.routes()]
