"""The ASGI app: ingest, SQL and operations routes around one Runtime."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from roost.api import ingest, ops, sql
from roost.config import Settings
from roost.runtime import Runtime


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Starlette:
    """An app that opens its Runtime at start-up, or uses the one given (tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime if runtime is not None else Runtime(settings or Settings())
        gc.freeze()  # what start-up made lives as long as the process: keep it out of GC
        try:
            yield
        finally:
            if owned:
                await app.state.runtime.close()

    app = Starlette(routes=[*ingest.routes(), *sql.routes(), *ops.routes()], lifespan=lifespan)
    if runtime is not None:
        app.state.runtime = runtime
    return app
