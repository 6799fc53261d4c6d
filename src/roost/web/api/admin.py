"""The admin API (admin keys): a project's tracking plan, transformations, consent and
destinations, as one document (`/api/v1/admin/config`) or a part at a time, and replays.

Every change is checked whole before it is written (errors name the field and the rule) and
applies to this server at once; other servers see it within `key_cache_seconds`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from roost.errors import BadRequest
from roost.model import Key
from roost.runtime import Runtime
from roost.storage.metadata import project_config
from roost.web.api.reading import admin_endpoint, json_body, json_response, parse_time
from roost.web.spec import OBJECT, ApiRoute, Doc


async def _apply(runtime: Runtime, key: Key, doc: Any) -> Response:
    stores = runtime.config_stores()
    await asyncio.to_thread(project_config.apply, stores, key.project_id, doc)
    runtime.configured(key.project_id)
    return json_response(await asyncio.to_thread(project_config.export, stores, key.project_id))


@admin_endpoint("configuration")
async def get_config(request: Request, runtime: Runtime, key: Key) -> Response:
    doc = await asyncio.to_thread(project_config.export, runtime.config_stores(), key.project_id)
    return json_response(doc)


@admin_endpoint("configuration")
async def put_config(request: Request, runtime: Runtime, key: Key) -> Response:
    return await _apply(runtime, key, await json_body(request))


def _section(name: str) -> Any:
    @admin_endpoint("configuration")
    async def put(request: Request, runtime: Runtime, key: Key) -> Response:
        return await _apply(runtime, key, {name: await json_body(request)})

    return put


@admin_endpoint("configuration")
async def put_contract(request: Request, runtime: Runtime, key: Key) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("body: must be an object with schema and action", field="body")
    target = request.path_params["target"]
    await asyncio.to_thread(
        runtime.contract_store.set,
        key.project_id,
        target,
        body.get("schema"),  # type: ignore[arg-type]
        body.get("action", "allow"),
    )
    runtime.configured(key.project_id)
    return json_response({"target": target, "action": body.get("action", "allow")})


@admin_endpoint("configuration")
async def delete_contract(request: Request, runtime: Runtime, key: Key) -> Response:
    await asyncio.to_thread(
        runtime.contract_store.delete, key.project_id, request.path_params["target"]
    )
    runtime.configured(key.project_id)
    return json_response({"deleted": request.path_params["target"]})


@admin_endpoint("configuration")
async def put_destination(request: Request, runtime: Runtime, key: Key) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("body: must be an object with kind and options", field="body")
    body = {**body, "name": request.path_params["name"]}
    found = await asyncio.to_thread(runtime.destinations.set, key.project_id, body)
    runtime.configured(key.project_id)
    return json_response(found.spec())


@admin_endpoint("configuration")
async def delete_destination(request: Request, runtime: Runtime, key: Key) -> Response:
    name = request.path_params["name"]
    await asyncio.to_thread(runtime.destinations.delete, key.project_id, name)
    runtime.configured(key.project_id)
    return json_response({"deleted": name})


@admin_endpoint("replays")
async def replay(request: Request, runtime: Runtime, key: Key) -> Response:
    """Send again from an offset or a time (`from_offset`, `since`), or dead letters (`dead_letters`:
    true for all, or a list of ids)."""
    body = await json_body(request) or {}
    if not isinstance(body, dict) or len(set(body) & {"from_offset", "since", "dead_letters"}) != 1:
        raise BadRequest(
            "body: give one of from_offset, since (ISO 8601) or dead_letters", field="body"
        )
    name = request.path_params["name"]
    store = runtime.destinations
    destination = await asyncio.to_thread(store.get, key.project_id, name)
    answer: dict[str, Any] = {"destination": name}
    if "dead_letters" in body:
        ids = body["dead_letters"]
        if ids is not True and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
            raise BadRequest("dead_letters: must be true or a list of ids", field="dead_letters")
        answer["dead_letters"] = await asyncio.to_thread(
            store.replay_letters, destination.id, None if ids is True else ids
        )
    else:
        after = replay_offset(runtime, body)
        await asyncio.to_thread(store.rewind, key.project_id, name, after)
        answer["after_offset"] = after
    runtime.forwarders.poke()
    return json_response(answer)


def replay_offset(runtime: Runtime, body: dict[str, Any]) -> int:
    if "from_offset" in body:
        offset = body["from_offset"]
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 1:
            raise BadRequest("from_offset: must be a Log offset of at least 1", field="from_offset")
        return offset - 1
    return runtime.log.offset_before(parse_time(body["since"], "since").timestamp())


def routes() -> list[BaseRoute]:
    base = "/api/v1/admin"
    tag = "Configuration"
    config = Doc("The project's whole pipeline configuration (as `roost.yaml`).", tag=tag)
    return [
        ApiRoute(f"{base}/config", get_config, method="GET", doc=config),
        ApiRoute(f"{base}/config", put_config, method="PUT", doc=Doc(
            "Replace the project's configuration: contracts, unplanned, consent, "
            "transformations and destinations; what it does not name is removed.",
            body=OBJECT, tag=tag)),
        ApiRoute(f"{base}/transformations", _section("transformations"), method="PUT", doc=Doc(
            "Replace the project's transformation steps.", body={"type": "array"}, tag=tag)),
        ApiRoute(f"{base}/consent", _section("consent"), method="PUT", doc=Doc(
            "Set what the project stores without consent.", body=OBJECT, tag=tag)),
        ApiRoute(f"{base}/unplanned", _section("unplanned"), method="PUT", doc=Doc(
            "What happens to events no contract names.",
            body={"enum": ["allow", "flag", "block"]}, tag=tag)),
        ApiRoute(f"{base}/contracts/{{target:path}}", put_contract, method="PUT", doc=Doc(
            "Plan an event name (or type:<call>): a JSON Schema and what a violation does.",
            body=CONTRACT, tag=tag)),
        ApiRoute(f"{base}/contracts/{{target:path}}", delete_contract, method="DELETE",
                 doc=Doc("Remove a target from the tracking plan.", tag=tag)),
        ApiRoute(f"{base}/destinations/{{name}}/replay", replay, method="POST", doc=Doc(
            "Send again from an offset or a time, or the dead letters.", body=REPLAY, tag=tag)),
        ApiRoute(f"{base}/destinations/{{name}}", put_destination, method="PUT", doc=Doc(
            "Create or change a destination.", body=DESTINATION, tag=tag)),
        ApiRoute(f"{base}/destinations/{{name}}", delete_destination, method="DELETE",
                 doc=Doc("Remove a destination.", tag=tag)),
    ]  # fmt: skip


CONTRACT = {
    "type": "object",
    "required": ["schema"],
    "properties": {
        "schema": {"type": "object", "description": "A JSON Schema (drafts 4 to 2020-12)."},
        "action": {"enum": ["block", "omit", "allow"], "default": "block"},
    },
}
DESTINATION = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"type": "string", "description": "webhook, postgres, segment, nats, or a plugin."},
        "options": {"type": "object"},
        "enabled": {"type": "boolean"},
        "types": {"type": "array", "items": {"type": "string"}},
        "events": {"type": "array", "items": {"type": "string"}},
        "mapping": {"type": "object", "additionalProperties": {"type": "string"}},
        "consent": {"type": "array", "items": {"type": "string"}},
    },
}
REPLAY = {
    "type": "object",
    "properties": {
        "from_offset": {"type": "integer", "minimum": 1},
        "since": {"type": "string", "format": "date-time"},
        "dead_letters": {
            "oneOf": [{"const": True}, {"type": "array", "items": {"type": "integer"}}]
        },
    },
}
