"""`roost keys`: the keys clients send and read with."""

from __future__ import annotations

from typing import Any

import click

from roost.commands.common import (
    data_option,
    echo_json,
    json_option,
    metadata_for,
)
from roost.model import KEY_KINDS, Key


def key_view(key: Key, raw: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": key.id,
        "kind": key.kind,
        "project": key.project_slug,
        "label": key.label,
        "prefix": key.prefix,
        "allowed_types": list(key.allowed_types) if key.allowed_types else None,
        "rate": key.rate,
        "burst": key.burst,
        "hourly": key.hourly,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }
    if raw is not None:
        view = {"key": raw, **view}
    return view


@click.group()
def keys() -> None:
    """API keys: write (ingest), read (query), delete (erasure), admin."""


@keys.command("create")
@data_option
@click.option("--project", required=True, help="Project slug.")
@click.option("--kind", type=click.Choice(KEY_KINDS), required=True)
@click.option("--label", default=None, help='A name such as "web", "ios", "server".')
@click.option("--allow", "allowed", multiple=True, help="Allowed event type (repeatable).")
@click.option("--rate", type=float, default=None, help="Events per second (default: the plan's).")
@click.option("--burst", type=float, default=None, help="Burst (default: 5 × rate).")
@click.option("--hourly", type=float, default=None, help="Events per hour (default: the plan's).")
@json_option
def keys_create(
    data: str | None,
    project: str,
    kind: str,
    label: str | None,
    allowed: tuple[str, ...],
    rate: float | None,
    burst: float | None,
    hourly: float | None,
    as_json: bool,
) -> None:
    """Create a key; its raw value is printed once and never again."""
    with metadata_for(data) as (_, metadata):
        key, raw = metadata.create_key(
            project, kind, label=label, allowed_types=allowed or None, rate=rate, burst=burst,
            hourly=hourly,
        )  # fmt: skip
    if as_json:
        echo_json(key_view(key, raw))
        return
    click.echo(f"Created {kind} key {key.id} for project {project}.")
    if kind == "jwt-secret":
        click.echo(f"Secret (shown once): {raw}")
        click.echo(f'Sign HS256 tokens with it, claims {{"site_id": "{project}", "exp": …}}.')
        return
    click.echo(f"Key (shown once): {raw}")


@keys.command("list")
@data_option
@click.option("--project", default=None, help="Only this project's keys.")
@json_option
def keys_list(data: str | None, project: str | None, as_json: bool) -> None:
    """List keys (their ids and prefixes; raw keys are never stored)."""
    with metadata_for(data) as (_, metadata):
        rows = metadata.list_keys(project)
    if as_json:
        echo_json([key_view(k) for k in rows])
        return
    for k in rows:
        state = "revoked" if k.revoked_at else "active"
        click.echo(f"{k.id}\t{k.kind}\t{k.project_slug}\t{k.prefix}…\t{k.label or '-'}\t{state}")


@keys.command("revoke")
@data_option
@click.argument("key_id")
def keys_revoke(data: str | None, key_id: str) -> None:
    """Revoke a key: it is refused within a second."""
    with metadata_for(data) as (_, metadata):
        metadata.revoke_key(key_id)
    click.echo(f"Revoked {key_id}.")


COMMANDS = [keys]
