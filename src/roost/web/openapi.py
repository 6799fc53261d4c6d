"""The HTTP API described as OpenAPI 3.1, made from the routes themselves: each route's Doc
(web/spec.py), the key kinds its endpoint takes, and the msgspec types of its body and answer
(their JSON Schema is msgspec's). Served at `/api/openapi.json`, and readable at `/api/docs`
as a page rendered here from the same document (no script, nothing from another site).

The dashboard's pages are not part of it: they are HTML behind a login, not an API.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from roost import __version__
from roost.web import ingest
from roost.web.api.reading import key_kinds
from roost.web.spec import OBJECT, ApiRoute, Doc

REF = "#/components/schemas/{name}"
ERROR = {
    "type": "object",
    "description": "Every refusal of the API: the field and the rule it broke.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
            "required": ["code", "message"],
        }
    },
}
SECURITY: dict[str, dict[str, Any]] = {
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "The key as the user name, no password (Segment's libraries).",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "The key as a bearer token."},
    "header": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
}
KEY_SCHEMES: list[dict[str, list[str]]] = [{"basic": []}, {"bearer": []}, {"header": []}]
SERVED = ("GET", "POST", "PUT", "DELETE", "PATCH")


def document(routes: Iterable[BaseRoute], ingest: Mapping[str, Doc]) -> dict[str, Any]:
    """The whole API: every ApiRoute of `routes`, and the ingest paths (bare ASGI)."""
    operations: list[tuple[str, str, Doc, tuple[str, ...] | None, list[str]]] = []
    for route in routes:
        if not isinstance(route, ApiRoute):
            continue
        kinds = getattr(route.endpoint, "key_kinds", None)
        path, params = openapi_path(route.path)
        for method in sorted((route.methods or set()) & set(SERVED)):
            operations.append((path, method, route.doc, kinds, params))
    for path, doc in ingest.items():
        kinds = (doc.auth,) if doc.auth else None
        operations.append((path, "POST", doc, kinds, []))

    types = list(
        dict.fromkeys(t for op in operations for part in (op[2].body, op[2].answer)
                      for t in _types(part))
    )  # fmt: skip
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    ref_of = dict(zip(types, refs, strict=True))

    paths: dict[str, dict[str, Any]] = {}
    for path, method, doc, kinds, params in operations:
        paths.setdefault(path, {})[method.lower()] = _operation(
            path, method, doc, kinds, params, ref_of
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Roost",
            "version": __version__,
            "description": "Event collection and product analytics: ingest in four dialects, "
            "queries, reports, erasure, export and configuration. Errors are "
            '`{"error": {"code", "message", "field"}}`; ingest answers in each dialect\'s '
            "own shape (docs/wire-contracts.md).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**components, "Error": ERROR},
            "securitySchemes": SECURITY,
        },
    }


def openapi_path(path: str) -> tuple[str, list[str]]:
    """Starlette's `{name:path}` as OpenAPI's `{name}`, and the parameters' names."""
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    return re.sub(r"{(\w+)(?::\w+)?}", r"{\1}", path), names


def _is_type(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, msgspec.Struct)


def _types(part: Any) -> Iterator[type]:
    """The msgspec types a body or answer names, itself or among its `anyOf`."""
    if _is_type(part):
        yield part
    elif isinstance(part, dict):
        for option in part.get("anyOf", []):
            yield from _types(option)


def _schema(part: Any, ref_of: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if _is_type(part):
        return ref_of[part]
    if isinstance(part, dict) and "anyOf" in part:
        return {**part, "anyOf": [_schema(p, ref_of) for p in part["anyOf"]]}
    return dict(part)


def _operation(
    path: str,
    method: str,
    doc: Doc,
    kinds: tuple[str, ...] | None,
    params: list[str],
    ref_of: dict[Any, dict[str, Any]],
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_")
        + ("_slash" if path.endswith("/") and path != "/" else ""),  # /decide/ beside /decide
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in params
    ] + [
        {"name": name, "in": "query", "required": False, "description": text,
         "schema": {"type": "string"}}
        for name, text in doc.query
    ]  # fmt: skip
    if parameters:
        op["parameters"] = parameters
    if doc.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(doc.body, ref_of)}},
        }
    error = {"content": {"application/json": {"schema": {"$ref": REF.format(name="Error")}}}}
    op["responses"] = {
        "200": {"description": "Done.", "content": {doc.media: {"schema": _schema(doc.answer or OBJECT, ref_of)}}},
        "400": {"description": "The request breaks a rule; the field is named.", **error},
    }  # fmt: skip
    if doc.auth == "metrics":
        op["security"] = [{"bearer": []}]
        op["description"] = "The bearer token is the `metrics_token` setting."
    elif kinds:
        op["security"] = KEY_SCHEMES
        op["description"] = f"Takes {key_kinds(kinds)} key."
        op["responses"]["401"] = {"description": "Missing, unknown or revoked key.", **error}
        op["responses"]["403"] = {"description": "A key of another kind.", **error}
    else:
        op["security"] = []
    return op


def page(spec: Mapping[str, Any]) -> str:
    """The description as one HTML page, for people."""
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(spec['info']['title'])} HTTP API</title>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;"
        "padding:0 1em;color:#222}code,pre{font:13px ui-monospace,monospace}"
        "pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:24em}"
        "h3{margin:1.6em 0 .2em}.m{display:inline-block;min-width:4.5em;font-weight:600}"
        "details{margin:.2em 0}</style></head><body>",
        f"<h1>{e(spec['info']['title'])} HTTP API <small>{e(spec['info']['version'])}</small></h1>",
        f"<p>{e(spec['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI "
        f"{e(spec['openapi'])}).</p>",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((path, method, op))
    for tag, ops in by_tag.items():
        parts.append(f"<h2>{e(tag)}</h2>")
        for path, method, op in ops:
            parts.append(
                f"<h3 id='{e(op['operationId'])}'><span class=m>{e(method.upper())}</span>"
                f"<code>{e(path)}</code></h3><p>{e(op['summary'])}"
                f"{(' ' + e(op['description'])) if op.get('description') else ''}</p>"
            )
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                shown = json.dumps(_inline(body["schema"], spec), indent=2)
                parts.append(f"<details><summary>Body</summary><pre>{e(shown)}</pre></details>")
            for parameter in op.get("parameters", []):
                if parameter["in"] == "query":
                    parts.append(
                        f"<div><code>?{e(parameter['name'])}</code> "
                        f"{e(parameter.get('description', ''))}</div>"
                    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _inline(schema: Any, spec: Mapping[str, Any], depth: int = 0) -> Any:
    """A schema with its references written out (one level deep), to read on the page."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and depth < 2:
            target = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            return _inline(target, spec, depth + 1)
        return {k: _inline(v, spec, depth) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, spec, depth) for v in schema]
    return schema


def _described(app: Any) -> tuple[bytes, str]:
    """The app's description, encoded and as a page: made at the first request (the routes
    are all known by then) and kept."""
    found: tuple[bytes, str] | None = getattr(app.state, "openapi", None)
    if found is None:
        spec = document(app.routes, ingest.DOCS)
        found = (msgspec.json.encode(spec), page(spec))
        app.state.openapi = found
    return found


async def openapi_json(request: Request) -> Response:
    return Response(_described(request.app)[0], media_type="application/json")


async def docs(request: Request) -> Response:
    return HTMLResponse(_described(request.app)[1])


def routes() -> list[BaseRoute]:
    return [
        ApiRoute("/api/openapi.json", openapi_json, method="GET", doc=Doc(
            "This description (OpenAPI 3.1).", tag="Operations", auth="")),
        ApiRoute("/api/docs", docs, method="GET", doc=Doc(
            "This description as a page.", answer={"type": "string"}, media="text/html",
            tag="Operations", auth="")),
    ]  # fmt: skip
