"""The settings page (owners and members): keys, budget use and notices, the project's pipeline
configuration (tracking plan, transformations, consent, destinations) as one YAML document,
delivery health and dead letters; and, for owners, the workspace's people."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import yaml
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.errors import ClientError, Forbidden
from roost.model import KEY_KINDS
from roost.storage.metadata import project_config
from roost.storage.metadata.accounts import ROLES
from roost.storage.metadata.notices import TLS_MODES
from roost.storage.metadata.notices import checked as notice_channels
from roost.web.api import quarantine
from roost.web.api.contracts import draft_plan, since_of
from roost.web.dashboard import render
from roost.web.dashboard.auth import Context, page

HELD_SHOWN = 20
DRIFT_SHOWN = 50
LETTERS_SHOWN = 20
NOTICE_FIELDS = (
    "smtp_host", "smtp_port", "smtp_tls", "smtp_user", "smtp_password", "mail_from", "mail_to",
    "webhook_url",
)  # fmt: skip


def _gather(context: Context) -> dict[str, Any]:
    """Everything the page shows, read in one worker thread."""
    runtime = context.runtime
    project = context.project
    stores = runtime.config_stores()
    doc = project_config.export(stores, project.id)
    workspace = next(w for w in runtime.metadata.list_workspaces() if w.id == project.workspace_id)
    destinations = runtime.destination_statuses(project.id)
    letters = {
        d.name: runtime.destinations.letters(d.id, "dead", LETTERS_SHOWN)
        for d in runtime.destinations.configured(project.id)
    }
    violations = sorted(
        (
            (event, rule, n)
            for (p, event, rule), n in runtime.contracts.violations.items()
            if p == project.id
        ),
        key=lambda row: -row[2],
    )
    drift = runtime.seen.since(project.id, since_of(None, datetime.now(UTC)),
                               limit=DRIFT_SHOWN + 1, newest_first=True)  # fmt: skip
    return {
        "keys": runtime.metadata.list_keys(project.slug),
        "workspace": workspace,
        "used": runtime.usage.used(workspace.id),
        "config_text": yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
        "config": doc,
        "destinations": destinations,
        "letters": letters,
        "violations": violations[:50],
        "people": runtime.accounts.list_users(workspace.id) if context.user.role == "owner" else [],
        "channels": runtime.notices.channels(workspace.id),
        "notices": runtime.notices.sent(workspace.id)[:24],
        "shares": runtime.shares.list(project.id),
        "quarantined": runtime.quarantine.count(project.id),
        "held": runtime.quarantine.listed(project.id, HELD_SHOWN),
        "drift": drift[:DRIFT_SHOWN],
        "drift_more": len(drift) > DRIFT_SHOWN,
        "unplanned_seen": len(_drafted(context, doc)),
    }


def _drafted(context: Context, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Draft contracts for what was seen and the plan does not name."""
    planned = {c["target"] for c in doc.get("contracts", [])}
    seen = context.runtime.seen.of(context.project.id)
    return [c for c in draft_plan(seen) if c["target"] not in planned]


async def _show(context: Context, status: int = 200, **extra: Any) -> Response:
    found = await asyncio.to_thread(_gather, context)
    if "config_text" in extra:
        found.pop("config_text")
    return render.page(
        context.request,
        "settings.html",
        context.values(
            **found, kinds=KEY_KINDS, roles=ROLES, tls_modes=TLS_MODES, utc=UTC, **extra
        ),
        status,
    )


def _back(context: Context, anchor: str) -> Response:
    return RedirectResponse(f"/p/{context.project.slug}/settings#{anchor}", 303)


def _field(context: Context, name: str) -> str:
    assert context.form is not None
    value = context.form.get(name)
    return value.strip() if isinstance(value, str) else ""


@page(configure=True)
async def settings(context: Context) -> Response:
    return await _show(context)


@page(configure=True)
async def create_key(context: Context) -> Response:
    kind = _field(context, "kind") or "write"
    label = _field(context, "label") or None
    try:
        key, raw = await asyncio.to_thread(
            context.runtime.metadata.create_key, context.project.slug, kind, label=label
        )
    except ClientError as error:
        return await _show(context, 400, key_problem=error.message)
    return await _show(context, new_key=raw, new_key_id=key.id)


@page(configure=True)
async def revoke_key(context: Context) -> Response:
    key_id = context.request.path_params["key_id"]
    keys = await asyncio.to_thread(context.runtime.metadata.list_keys, context.project.slug)
    if key_id not in {k.id for k in keys}:
        return await _show(context, 404, key_problem=f"No key {key_id!r} in this project.")
    await asyncio.to_thread(context.runtime.metadata.revoke_key, key_id)
    return _back(context, "keys")


@page(configure=True)
async def create_share(context: Context) -> Response:
    """A read-only link to the project's report pages; its address is shown once."""
    label = _field(context, "label")
    try:
        _, token = await asyncio.to_thread(context.runtime.shares.create, context.project.id, label)
    except ClientError as error:
        return await _show(context, 400, share_problem=error.message)
    address = f"{str(context.request.base_url).rstrip('/')}/s/{token}/"
    return await _show(context, new_share=address)


@page(configure=True)
async def revoke_share(context: Context) -> Response:
    try:
        share_id = int(context.request.path_params["share_id"])
    except ValueError:
        share_id = -1
    if not await asyncio.to_thread(context.runtime.shares.revoke, context.project.id, share_id):
        return await _show(context, 404, share_problem="No such link in this project.")
    return _back(context, "shares")


@page(configure=True)
async def save_config(context: Context) -> Response:
    text = _field(context, "config")
    try:
        doc = project_config.load_yaml(text, "config") if text else {}
    except ClientError as error:
        return await _show(context, 400, config_problem=error.message, config_text=text[:100_000])
    try:
        await asyncio.to_thread(
            project_config.apply, context.runtime.config_stores(), context.project.id, doc
        )
    except ClientError as error:
        return await _show(context, 400, config_problem=error.message, config_text=text)
    context.runtime.configured(context.project.id)
    return _back(context, "configuration")


@page(configure=True)
async def replay_letters(context: Context) -> Response:
    store = context.runtime.destinations
    destination = await asyncio.to_thread(
        store.get, context.project.id, context.request.path_params["name"]
    )
    await asyncio.to_thread(store.replay_letters, destination.id, None)
    context.runtime.forwarders.poke()
    return _back(context, "destinations")


@page(configure=True)
async def replay_quarantine(context: Context) -> Response:
    done = await quarantine.replay(context.runtime, context.project.id)
    return await _show(
        context, replayed=f"{done['stored']} stored, {done['still_held']} still held"
    )


@page(configure=True)
async def draft_contracts(context: Context) -> Response:
    """Add to the tracking plan a contract (`allow`: flagging, never blocking) for each event
    seen that it does not name, with the properties' types seen; the plan's own contracts
    are kept as they are."""
    stores = context.runtime.config_stores()

    def add() -> int:
        doc = project_config.export(stores, context.project.id)
        drafted = _drafted(context, doc)
        if drafted:
            project_config.apply(stores, context.project.id,
                                 {"contracts": [*doc.get("contracts", []), *drafted]})  # fmt: skip
        return len(drafted)

    try:
        added = await asyncio.to_thread(add)
    except ClientError as error:
        return await _show(context, 400, config_problem=error.message)
    context.runtime.configured(context.project.id)
    return await _show(context, drafted=added)


@page(configure=True)
async def create_person(context: Context) -> Response:
    if context.user.role != "owner":
        raise Forbidden("Only owners add people to the workspace.")
    try:
        await asyncio.to_thread(
            context.runtime.accounts.create_user,
            context.user.workspace_id,
            _field(context, "email"),
            _field(context, "password"),
            _field(context, "role") or "viewer",
        )
    except ClientError as error:
        return await _show(context, 400, person_problem=error.message)
    return _back(context, "people")


@page(configure=True)
async def save_notices(context: Context) -> Response:
    """Where the workspace's budget notices go (owners: it holds the SMTP password)."""
    if context.user.role != "owner":
        raise Forbidden("Only owners set where budget notices go.")
    store = context.runtime.notices
    current = await asyncio.to_thread(store.channels, context.user.workspace_id)
    given = {name: _field(context, name) for name in NOTICE_FIELDS}
    if not given["smtp_password"]:  # left empty: keep the one set
        given["smtp_password"] = current.smtp_password or ""
    try:
        await asyncio.to_thread(
            store.set_channels, context.user.workspace_id, notice_channels(given)
        )
    except ClientError as error:
        return await _show(context, 400, notice_problem=error.message)
    return _back(context, "budget")


def routes() -> list[BaseRoute]:
    base = "/p/{slug}/settings"
    return [
        Route(base, settings, methods=["GET"]),
        Route(f"{base}/keys", create_key, methods=["POST"]),
        Route(f"{base}/keys/{{key_id}}/revoke", revoke_key, methods=["POST"]),
        Route(f"{base}/config", save_config, methods=["POST"]),
        Route(f"{base}/shares", create_share, methods=["POST"]),
        Route(f"{base}/shares/{{share_id}}/revoke", revoke_share, methods=["POST"]),
        Route(f"{base}/destinations/{{name}}/replay", replay_letters, methods=["POST"]),
        Route(f"{base}/quarantine/replay", replay_quarantine, methods=["POST"]),
        Route(f"{base}/plan/draft", draft_contracts, methods=["POST"]),
        Route(f"{base}/people", create_person, methods=["POST"]),
        Route(f"{base}/notices", save_notices, methods=["POST"]),
    ]
