"""The ASGI app: ingest paths straight to web/ingest.py, everything else through Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from roost.config import Settings
from roost.runtime import Runtime
from roost.web import dashboard, ingest, intake, openapi
from roost.web.api import (
    admin,
    compat,
    contracts,
    debugger,
    destinations,
    erasure,
    export,
    ops,
    profiles,
    quarantine,
    sql,
    stats,
    trace,
)
from roost.web.body import Receive
from roost.web.dashboard.throttle import LoginThrottle
from roost.web.peer import with_forwarded_scheme
from roost.web.proxy import arrived


class RoostApp:
    """Dispatches on the path: the ingest endpoints are bare ASGI, the rest is Starlette."""

    def __init__(self, starlette: Starlette) -> None:
        self.starlette = starlette

    @property
    def state(self) -> State:
        return self.starlette.state

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: intake.Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path in ingest.PATHS:
                await ingest.handle(self.state.runtime, ingest.PATHS[path], scope, receive, send)
                return
            scope = with_forwarded_scheme(
                arrived(scope), self.state.runtime.settings.trust_forwarded_for
            )
        await self.starlette(scope, receive, send)


Attach = Callable[[Runtime], contextlib.AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    attach: Attach | None = None,
) -> RoostApp:
    """An app that opens its Runtime at start-up, or uses the one given (tests); `attach`
    is what else runs beside it while it serves (the ingest processes)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = (
            runtime if runtime is not None else Runtime(settings or Settings()).open()
        )
        gc.freeze()  # what start-up made lives as long as the process: keep it out of GC
        background = asyncio.create_task(app.state.runtime.background())
        try:
            if attach is None:
                yield
            else:
                async with attach(app.state.runtime):
                    yield
        finally:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background
            if owned:
                await app.state.runtime.close()
            gc.unfreeze()  # let exit finalise what start-up made (DuckDB's objects among them)

    starlette = Starlette(
        routes=[
            *sql.routes(),
            *stats.routes(),
            *erasure.routes(),
            *export.routes(),
            *profiles.routes(),
            *trace.routes(),
            *quarantine.routes(),
            *contracts.routes(),
            *admin.routes(),
            *destinations.routes(),
            *debugger.routes(),
            *ops.routes(),
            *compat.routes(),
            *openapi.routes(),
            *dashboard.routes(),
            Mount("/static", StaticFiles(directory=dashboard.STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
    if runtime is not None:
        starlette.state.runtime = runtime
    starlette.state.logins = LoginThrottle()
    return RoostApp(starlette)
