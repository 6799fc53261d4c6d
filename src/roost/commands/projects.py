"""`roost projects`: the apps, sites and games events belong to."""

from __future__ import annotations

import click

from roost.commands.common import (
    data_option,
    echo_json,
    json_option,
    metadata_for,
)
from roost.errors import RoostError


@click.group()
def projects() -> None:
    """Projects: an app, a site or a game; the slug is the web dialect's site_id."""


@projects.command("create")
@data_option
@click.argument("slug")
@click.option("--name", default=None, help="Display name (default: the slug).")
@click.option("--workspace", default="default", show_default=True)
@click.option("--store-ip", is_flag=True, help="Keep client IPs in context.ip (off by default).")
@json_option
def projects_create(
    data: str | None, slug: str, name: str | None, workspace: str, store_ip: bool, as_json: bool
) -> None:
    """Create a project."""
    with metadata_for(data, create=True) as (settings, metadata):
        try:
            ws = metadata.workspace(workspace)
        except RoostError:
            if workspace != "default":
                raise
            ws = metadata.create_workspace("default", settings.default_plan)
        project = metadata.create_project(ws.id, slug, name, store_ip=store_ip)
    view = {"id": project.id, "slug": project.slug, "name": project.name, "workspace": ws.name}
    echo_json(view) if as_json else click.echo(f"Created project {project.slug} in {ws.name}.")


@projects.command("list")
@data_option
@json_option
def projects_list(data: str | None, as_json: bool) -> None:
    """List projects."""
    with metadata_for(data) as (_, metadata):
        names = {w.id: w.name for w in metadata.list_workspaces()}
        views = [
            {"id": p.id, "slug": p.slug, "name": p.name, "workspace": names.get(p.workspace_id)}
            for p in metadata.list_projects()
        ]
    if as_json:
        echo_json(views)
        return
    for v in views:
        click.echo(f"{v['slug']}\t{v['name']}\t{v['workspace']}")


COMMANDS = [projects]
