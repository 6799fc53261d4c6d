"""`roost workspaces`: tenants, their plan, budget and budget notices."""

from __future__ import annotations

import click

from roost.commands.common import (
    data_option,
    echo_json,
    json_option,
    metadata_for,
)
from roost.model import PLANS
from roost.storage.metadata.notices import TLS_MODES, NoticeStore
from roost.storage.metadata.notices import checked as notice_channels


@click.group()
def workspaces() -> None:
    """Workspaces (tenants): plan and monthly event budget."""


@workspaces.command("create")
@data_option
@click.argument("name")
@click.option("--plan", type=click.Choice(PLANS), default="free", show_default=True)
@click.option("--budget", type=int, default=None, help="Monthly event budget (default: none).")
@json_option
def workspaces_create(
    data: str | None, name: str, plan: str, budget: int | None, as_json: bool
) -> None:
    """Create a workspace."""
    with metadata_for(data, create=True) as (_, metadata):
        ws = metadata.create_workspace(name, plan, budget)
    view = {"id": ws.id, "name": ws.name, "plan": ws.plan, "monthly_budget": ws.monthly_budget}
    echo_json(view) if as_json else click.echo(f"Created workspace {ws.name} ({ws.plan}).")


@workspaces.command("set")
@data_option
@click.argument("name")
@click.option("--plan", type=click.Choice(PLANS), default=None)
@click.option("--budget", type=int, default=None, help="Monthly event budget.")
@click.option("--no-budget", is_flag=True, help="Remove the monthly budget.")
def workspaces_set(
    data: str | None, name: str, plan: str | None, budget: int | None, no_budget: bool
) -> None:
    """Change a workspace's plan or budget."""
    with metadata_for(data) as (_, metadata):
        if no_budget:
            ws = metadata.update_workspace(name, plan=plan, monthly_budget=None)
        elif budget is not None:
            ws = metadata.update_workspace(name, plan=plan, monthly_budget=budget)
        else:
            ws = metadata.update_workspace(name, plan=plan)
    click.echo(f"{ws.name}: plan {ws.plan}, budget {ws.monthly_budget or 'none'}")


@workspaces.command("notices")
@data_option
@click.argument("name")
@click.option("--smtp-host", default=None, help="SMTP server for the budget emails.")
@click.option("--smtp-port", type=int, default=None, help="Default: 587 (starttls), 465, 25.")
@click.option("--smtp-tls", type=click.Choice(TLS_MODES), default=None, help="Default: starttls.")
@click.option("--smtp-user", default=None)
@click.option("--smtp-password", envvar="ROOST_SMTP_PASSWORD", default=None,
              help="Or ROOST_SMTP_PASSWORD.")  # fmt: skip
@click.option("--mail-from", default=None, help="The sender address.")
@click.option("--mail-to", default=None, help="Comma-separated; default: the owners.")
@click.option("--webhook-url", default=None, help="POSTed a JSON notice.")
@click.option("--clear", is_flag=True, help="Forget every notice setting first.")
@json_option
def workspaces_notices(data: str | None, name: str, clear: bool, as_json: bool,
                       **given: str | int | None) -> None:  # fmt: skip
    """Where the 80% and 100% budget notices go (SMTP and/or a webhook), and those sent."""
    with metadata_for(data) as (_, metadata):
        store = NoticeStore(metadata.engine)
        ws = metadata.workspace(name)
        current = {} if clear else store.channels(ws.id).__dict__
        changes = {k: v for k, v in given.items() if v is not None}
        if changes or clear:
            store.set_channels(ws.id, notice_channels({**current, **changes}))
        shown = store.channels(ws.id).shown()
        sent = [{**n.__dict__, "created_at": n.created_at.isoformat()} for n in store.sent(ws.id)]
    if as_json:
        echo_json({"channels": shown, "sent": sent})
        return
    for field, value in shown.items():
        click.echo(f"{field}\t{value if value is not None else ''}")
    for n in sent:
        click.echo(f"{n['month']} {n['threshold']}%: email {n['email']}, webhook {n['webhook']}")


@workspaces.command("list")
@data_option
@json_option
def workspaces_list(data: str | None, as_json: bool) -> None:
    """List workspaces."""
    with metadata_for(data) as (_, metadata):
        rows = metadata.list_workspaces()
    views = [
        {"id": w.id, "name": w.name, "plan": w.plan, "monthly_budget": w.monthly_budget}
        for w in rows
    ]
    if as_json:
        echo_json(views)
        return
    for v in views:
        click.echo(f"{v['name']}\t{v['plan']}\tbudget {v['monthly_budget'] or 'none'}")


COMMANDS = [workspaces]
