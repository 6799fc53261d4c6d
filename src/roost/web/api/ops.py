"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import secrets

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from roost import metrics
from roost.web.spec import ApiRoute, Doc


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None or not runtime.ready:
        return JSONResponse({"status": "starting"}, 503)
    return JSONResponse(
        {
            "status": "ready",
            "last_offset": runtime.log.last_offset(),
            "loaded_offset": runtime.warehouse.loaded_offset(),
        }
    )


async def prometheus(request: Request) -> Response:
    """On the main port only behind `metrics_token` (the labels name every project): the
    metrics' own address (`metrics_listen`, loopback) serves them to a local scraper."""
    runtime = request.app.state.runtime
    token = runtime.settings.metrics_token
    given = request.headers.get("authorization", "")
    if not token or not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return JSONResponse(
            {"error": {"code": "not_found", "message": "metrics are served on metrics_listen, "
                       "or here with metrics_token", "field": None}},
            404,
        )  # fmt: skip
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [
        ApiRoute(
            "/healthz",
            healthz,
            method="GET",
            doc=Doc("The process is up.", tag="Operations", auth=""),
        ),
        ApiRoute(
            "/readyz",
            readyz,
            method="GET",
            doc=Doc(
                "Ready for traffic (503 while starting or stopping).", tag="Operations", auth=""
            ),
        ),
        ApiRoute(
            "/metrics",
            prometheus,
            method="GET",
            doc=Doc(
                "Prometheus metrics, behind `metrics_token` on this port.",
                answer={"type": "string"},
                media="text/plain",
                tag="Operations",
                auth="metrics",
            ),
        ),
    ]
