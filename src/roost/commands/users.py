"""`roost users`: the people who log in to the dashboard, and their roles."""

from __future__ import annotations

import secrets

import click

from roost.commands.common import data_option, echo_json, format_table, json_option, metadata_for
from roost.storage.metadata import Metadata
from roost.storage.metadata.accounts import ROLES, Accounts

DEMO_EMAIL = "admin@roost.local"


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("users")
def users_group() -> None:
    """Dashboard accounts: owners manage people and settings, members settings, viewers read."""


@users_group.command("create")
@data_option
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True)
@click.option("--workspace", default="default", show_default=True)
@click.option(
    "--password",
    envvar="ROOST_PASSWORD",
    default=None,
    help="The password (default: asked for; or ROOST_PASSWORD). At least 10 characters.",
)
def users_create(
    data: str | None, email: str, role: str, workspace: str, password: str | None
) -> None:
    """Give EMAIL a dashboard login in a workspace."""
    with metadata_for(data) as (_, metadata):
        ws = metadata.workspace(workspace)
        user = Accounts(metadata.engine).create_user(ws.id, email, _password(password), role)
    click.echo(f"Created {user.email} ({user.role}) in workspace {user.workspace!r}.")


@users_group.command("list")
@data_option
@json_option
def users_list(data: str | None, as_json: bool) -> None:
    with metadata_for(data) as (_, metadata):
        found = Accounts(metadata.engine).list_users()
    rows = [[u.email, u.role, u.workspace] for u in found]
    if as_json:
        echo_json([{"email": e, "role": r, "workspace": w} for e, r, w in rows])
    else:
        click.echo(format_table(["email", "role", "workspace"], rows))


@users_group.command("set-role")
@data_option
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def users_set_role(data: str | None, email: str, role: str) -> None:
    with metadata_for(data) as (_, metadata):
        user = Accounts(metadata.engine).set_role(email, role)
    click.echo(f"{user.email} is now {user.role}.")


@users_group.command("password")
@data_option
@click.argument("email")
@click.option("--password", envvar="ROOST_PASSWORD", default=None)
def users_password(data: str | None, email: str, password: str | None) -> None:
    """Set a new password; the user's sessions end."""
    with metadata_for(data) as (_, metadata):
        Accounts(metadata.engine).set_password(email, _password(password))
    click.echo(f"New password set for {email}; its sessions ended.")


@users_group.command("delete")
@data_option
@click.argument("email")
def users_delete(data: str | None, email: str) -> None:
    with metadata_for(data) as (_, metadata):
        Accounts(metadata.engine).delete_user(email)
    click.echo(f"Deleted {email}.")


def first_login(metadata: Metadata, url: str) -> None:
    """An owner login for the default workspace, printed once (`roost serve --demo`)."""
    accounts = Accounts(metadata.engine)
    if accounts.list_users():
        return
    password = secrets.token_urlsafe(12)
    accounts.create_user(metadata.workspace("default").id, DEMO_EMAIL, password, "owner")
    click.echo(f"Dashboard: {url}/ — log in as {DEMO_EMAIL} with password {password}")
    click.echo(f"  (shown once; a new one: roost users password {DEMO_EMAIL})")


COMMANDS = [users_group]
