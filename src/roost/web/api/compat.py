"""What the browser libraries ask besides ingest: analytics.js's settings, posthog-js's flags.

analytics.js first fetches `<cdnURL>/v1/projects/<writeKey>/settings`; pointed at Roost
(`cdnURL`), it gets settings that send every call back to this server (`apiHost`), so the
host is the only thing a site changes. Nothing secret is in them; an unknown or revoked key
gets 404.
"""

from __future__ import annotations

import re

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from roost.runtime import Runtime
from roost.web.spec import ApiRoute, Doc

CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"}


async def settings(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    key = runtime.keys.find(request.path_params["write_key"])
    if key is None or key.revoked_at is not None or key.kind != "write":
        return JSONResponse(
            {"error": {"code": "not_found", "message": "no such write key", "field": None}},
            404,
            headers=CORS,
        )
    host = request.headers.get("host") or request.url.netloc
    body = {
        "integrations": {
            "Segment.io": {
                "apiKey": request.path_params["write_key"],
                "apiHost": f"{host}/v1",
                "protocol": request.url.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": False,
            }
        },
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}}},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
    return JSONResponse(body, headers=CORS)


# posthog-js asks /decide/ (or /flags/) before it runs: no feature flags, no session
# recording, no surveys — capture only, with the compression Roost reads.
FLAGS = {
    "featureFlags": {},
    "featureFlagPayloads": {},
    "flags": {},
    "errorsWhileComputingFlags": False,
    "quotaLimited": [],
    "requestId": None,
    "config": {"enable_collect_everything": True},
    "isAuthenticated": False,
    "supportedCompression": ["gzip", "gzip-js"],
    "sessionRecording": False,
    "capturePerformance": False,
    "autocapture_opt_out": False,
    "autocaptureExceptions": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
    "toolbarParams": {},
    "defaultIdentifiedOnly": True,
}


async def flags(request: Request) -> Response:
    """The same answer to every project: Roost has no feature flags."""
    return JSONResponse(FLAGS, headers={"Access-Control-Allow-Origin": "*"})


_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
REMOTE_CONFIG = {**FLAGS, "hasFeatureFlags": False, "captureDeadClicks": False}


async def remote_config(request: Request) -> Response:
    """posthog-js's remote config for its token, as JSON or as the script that sets it
    (`/array/<token>/config.js`): the same as /decide/'s, for any token (nothing secret)."""
    token = request.path_params["token"]
    if not _TOKEN.match(token):
        return JSONResponse(
            {"error": {"code": "not_found", "message": "no such token", "field": "token"}},
            404, headers=CORS,
        )  # fmt: skip
    config = {**REMOTE_CONFIG, "token": token}
    if not request.url.path.endswith(".js"):
        return JSONResponse(config, headers=CORS)
    body = msgspec.json.encode({"config": config, "siteApps": []}).decode()
    script = (
        "(function(){var w=window;w._POSTHOG_REMOTE_CONFIG=w._POSTHOG_REMOTE_CONFIG||{};"
        f"w._POSTHOG_REMOTE_CONFIG[{msgspec.json.encode(token).decode()}]={body};}})();"
    )
    return Response(script, media_type="application/javascript", headers=CORS)


def routes() -> list[BaseRoute]:
    doc = Doc(
        "analytics.js's settings for a write key (the key is in the path): where to send.",
        tag="Ingest",
        auth="",
    )
    found: list[BaseRoute] = [
        ApiRoute("/v1/projects/{write_key}/settings", settings, method="GET", doc=doc)
    ]
    flags_doc = Doc("posthog-js's flags: none (Roost has no feature flags).", tag="Ingest", auth="")
    for path in ("/decide", "/decide/", "/flags", "/flags/"):
        for method in ("GET", "POST"):
            found.append(ApiRoute(path, flags, method=method, doc=flags_doc))
    remote_doc = Doc(
        "posthog-js's remote config (`config`: JSON; `config.js`: the script that sets it).",
        tag="Ingest", auth="",
    )  # fmt: skip
    for path in ("/array/{token}/config", "/array/{token}/config.js"):
        found.append(ApiRoute(path, remote_config, method="GET", doc=remote_doc))
    return found
