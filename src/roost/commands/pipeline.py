"""`roost config`, `roost destinations`, `roost replay`, `roost dead-letters`: a project's
pipeline — tracking plan, transformations, consent, destinations — and its deliveries.

Configuration is written to the metadata store (a running server applies it within
`key_cache_seconds`); delivery status and replays go through the running server, which
holds the forwarders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from roost.commands.common import (
    call_server,
    data_option,
    echo_json,
    format_table,
    json_option,
    metadata_for,
    server_options,
)
from roost.errors import NotFound, RoostError
from roost.storage.metadata import Metadata, project_config


def apply_file(metadata: Metadata, path: Path, project: str | None = None) -> dict[str, Any]:
    """Apply a config file's projects (creating those that do not exist yet); what was set."""
    documents = project_config.read_file(path, project)
    if project is not None:
        documents = {project: documents[project]} if project in documents else {}
    stores = project_config.Stores.on(metadata.engine)
    applied: dict[str, Any] = {}
    for slug, doc in documents.items():
        try:
            found = metadata.project(slug)
        except NotFound:
            workspace = metadata.workspace("default")
            found = metadata.create_project(workspace.id, slug)
        body = {k: v for k, v in doc.items() if k != "project"}
        applied[slug] = project_config.apply(stores, found.id, body, f"projects.{slug}")
    return applied


@click.group("config")
def config_group() -> None:
    """A project's pipeline configuration as one document (roost.toml or YAML)."""


@config_group.command("apply")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--project", default=None, help="Only this project (or the project of a YAML file).")
def config_apply(data: str | None, file: Path, project: str | None) -> None:
    """Apply FILE: each section it has replaces the project's; the rest is left alone."""
    with metadata_for(data, create=True) as (settings, metadata):
        metadata.ensure_default(settings.default_plan)  # as `roost serve` would on a new data dir
        applied = apply_file(metadata, file, project)
    if not applied:
        raise click.ClickException(
            f"{file}: no project in it (a [projects.<slug>] table, or project: <slug> in YAML)"
        )
    for slug, counts in applied.items():
        parts = ", ".join(f"{n} {section}" for section, n in counts.items()) or "settings"
        click.echo(f"{slug}: applied {parts}")


@config_group.command("show")
@data_option
@click.option("--project", default="default", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml")
def config_show(data: str | None, project: str, fmt: str) -> None:
    """Print the project's configuration, in the form `config apply` takes."""
    with metadata_for(data) as (_, metadata):
        found = metadata.project(project)
        doc = {"project": project, **project_config.export(
            project_config.Stores.on(metadata.engine), found.id
        )}  # fmt: skip
    if fmt == "json":
        echo_json(doc)
    else:
        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)


@click.group("destinations")
def destinations_group() -> None:
    """Destinations and their delivery health."""


@destinations_group.command("status")
@data_option
@server_options
@json_option
def destinations_status(data: str | None, url: str | None, project: str, as_json: bool) -> None:
    """Each destination's cursor, lag, deliveries, failures and dead letters (from the server)."""
    found = call_server(data, url, project, "read", "GET", "/api/v1/destinations")["destinations"]
    if as_json:
        echo_json(found)
        return
    columns = ["name", "kind", "lag", "delivered", "failures", "dead_letters", "last_error"]
    click.echo(format_table(columns, [[d[c] for c in columns] for d in found]))


@destinations_group.command("delete")
@data_option
@click.option("--project", default="default", show_default=True)
@click.argument("name")
def destinations_delete(data: str | None, project: str, name: str) -> None:
    """Remove a destination, its cursor and its dead letters."""
    with metadata_for(data) as (_, metadata):
        stores = project_config.Stores.on(metadata.engine)
        stores.destinations.delete(metadata.project(project).id, name)
    click.echo(f"deleted destination {name}")


@click.command("replay")
@data_option
@server_options
@click.argument("destination")
@click.option("--from-offset", type=int, default=None, help="Send again from this Log offset on.")
@click.option("--since", default=None, help="Send again what arrived from this ISO 8601 time on.")
@click.option("--dead-letters", is_flag=True, help="Try the destination's dead letters again.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this dead letter (repeatable).")
def replay(
    data: str | None,
    url: str | None,
    project: str,
    destination: str,
    from_offset: int | None,
    since: str | None,
    dead_letters: bool,
    ids: tuple[int, ...],
) -> None:
    """Send a destination events again: from an offset, from a time, or its dead letters."""
    chosen = [x for x in (from_offset is not None, since is not None, dead_letters or ids) if x]
    if len(chosen) != 1:
        raise click.UsageError("give one of --from-offset, --since or --dead-letters/--id")
    if from_offset is not None:
        body: dict[str, Any] = {"from_offset": from_offset}
    elif since is not None:
        body = {"since": since}
    else:
        body = {"dead_letters": list(ids) if ids else True}
    path = f"/api/v1/admin/destinations/{destination}/replay"
    answer = call_server(data, url, project, "admin", "POST", path, body)
    if "dead_letters" in answer:
        click.echo(f"{destination}: {answer['dead_letters']} dead letters queued for another try")
    else:
        click.echo(
            f"{destination}: sending again every event after offset {answer['after_offset']}"
        )


@click.command("dead-letters")
@data_option
@server_options
@click.argument("destination")
@json_option
def dead_letters(
    data: str | None, url: str | None, project: str, destination: str, as_json: bool
) -> None:
    """List a destination's dead letters: batches set aside after their last try."""
    path = f"/api/v1/destinations/{destination}/dead-letters"
    letters = call_server(data, url, project, "read", "GET", path)["dead_letters"]
    if as_json:
        echo_json(letters)
        return
    columns = ["id", "status", "count", "first_offset", "last_offset", "attempts", "error"]
    click.echo(format_table(columns, [[x[c] for c in columns] for x in letters]))


COMMANDS = [config_group, destinations_group, replay, dead_letters]


def apply_at_start(metadata: Metadata, path: Path | None) -> None:
    """`roost serve` applies the projects of its roost.toml, so the file in git is the truth."""
    if path is None:
        return
    try:
        applied = apply_file(metadata, path)
    except RoostError as error:
        raise click.ClickException(f"{path}: {error.message}") from None
    for slug, counts in applied.items():
        print(f"roost: {path}: applied {slug}: {counts}", file=sys.stderr)
