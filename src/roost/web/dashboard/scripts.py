"""The browser clients, served by Roost: `/js/roost.js` (the web tracker), and the game SDK
as an ES module (`/js/roost-game.mjs`) and as a classic script (`/js/roost-game.js`, the same
code wrapped to set `window.RoostGame`). Any site may load them (CORS, for the module)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

SOURCES = Path(__file__).parent / "static" / "js"


def _classic(module: str) -> str:
    body = module.replace(
        "export { RoostGame as default, RoostGame, RoostGame as OwlsignalClient };",
        "window.RoostGame = window.OwlsignalClient = RoostGame;",
    )
    body = body.replace("import.meta.url", "location.href")
    return f"(function () {{\n{body}\n}})();\n"


@cache
def script(name: str) -> tuple[bytes, str] | None:
    """The script's bytes and ETag; None for a name Roost does not serve."""
    if name == "roost.js":
        text = (SOURCES / "roost.js").read_text()
    elif name == "roost-game.mjs":
        text = (SOURCES / "roost-game.mjs").read_text()
    elif name == "roost-game.js":
        text = _classic((SOURCES / "roost-game.mjs").read_text())
    else:
        return None
    data = text.encode()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


async def serve(request: Request) -> Response:
    found = script(request.path_params["name"])
    if found is None:
        return Response("not found", 404, media_type="text/plain")
    data, etag = found
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=3600",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="text/javascript", headers=headers)


def routes() -> list[BaseRoute]:
    return [Route("/js/{name}", serve, methods=["GET", "HEAD"])]
