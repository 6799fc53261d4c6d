"""The do-nothing app: same stack as Roost (Starlette on one uvicorn worker), no work at all.

It reads the body and answers what Roost would, so the ratio of the two is the cost of
Roost's own work: parsing, the pipeline, and the durable commit.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return Response(b'{"success":true}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/track", accept, methods=["POST"]),
        Route("/v1/batch", accept, methods=["POST"]),
    ]
)
