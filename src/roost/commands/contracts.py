"""`roost contracts`: tracking plans from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from roost.commands.common import (
    data_option,
    echo_json,
    json_option,
    metadata_for,
)
from roost.pipeline.plan import ACTIONS, UNPLANNED
from roost.storage.metadata import Metadata
from roost.storage.metadata.contracts import ContractStore


@click.group()
def contracts() -> None:
    """Tracking plans: a JSON Schema per event name (or type:<call>) and what a violation does."""


def _contract_store(metadata: Metadata) -> ContractStore:
    return ContractStore(metadata.engine)


@contracts.command("set")
@data_option
@click.option("--project", required=True, help="Project slug.")
@click.argument("target")
@click.option(
    "--schema", "schema_text", required=True, help="JSON Schema, or @FILE to read it from a file."
)
@click.option("--action", type=click.Choice(ACTIONS), default="block", show_default=True)
def contracts_set(
    data: str | None, project: str, target: str, schema_text: str, action: str
) -> None:
    """Plan TARGET (an event name, or type:identify etc.) with a schema for its properties/traits."""
    text = Path(schema_text[1:]).read_text() if schema_text.startswith("@") else schema_text
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"schema: not JSON ({error})") from None
    with metadata_for(data) as (_, metadata):
        _contract_store(metadata).set(metadata.project(project).id, target, parsed, action)
    click.echo(f"{project}: {target!r} planned ({action} on violation).")


@contracts.command("delete")
@data_option
@click.option("--project", required=True, help="Project slug.")
@click.argument("target")
def contracts_delete(data: str | None, project: str, target: str) -> None:
    """Remove TARGET from the project's tracking plan."""
    with metadata_for(data) as (_, metadata):
        _contract_store(metadata).delete(metadata.project(project).id, target)
    click.echo(f"{project}: {target!r} removed from the plan.")


@contracts.command("unplanned")
@data_option
@click.option("--project", required=True, help="Project slug.")
@click.argument("policy", type=click.Choice(UNPLANNED))
def contracts_unplanned(data: str | None, project: str, policy: str) -> None:
    """What happens to events the plan does not name: allow, flag or block."""
    with metadata_for(data) as (_, metadata):
        _contract_store(metadata).set_unplanned(metadata.project(project).id, policy)
    click.echo(f"{project}: unplanned events {policy}.")


@contracts.command("list")
@data_option
@click.option("--project", required=True, help="Project slug.")
@json_option
def contracts_list(data: str | None, project: str, as_json: bool) -> None:
    """Show the project's tracking plan."""
    with metadata_for(data) as (_, metadata):
        found, unplanned = _contract_store(metadata).list(metadata.project(project).id)
    if as_json:
        echo_json(
            {
                "unplanned": unplanned,
                "contracts": [
                    {"target": c.target, "action": c.action, "schema": c.schema} for c in found
                ],
            }
        )
        return
    click.echo(f"unplanned events: {unplanned}")
    for c in found:
        click.echo(f"{c.target}\t{c.action}\t{json.dumps(c.schema)}")


COMMANDS = [contracts]
