"""`roost serve` and `roost worker`: the server, and the Log's consumers apart from it."""

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
from typing import IO

import click

from roost import config
from roost.commands.common import (
    SERVER_FILE,
    data_option,
    display_host,
    load_settings,
    metadata_for,
)
from roost.commands.pipeline import apply_at_start
from roost.commands.transfer import fill_demo
from roost.commands.users import first_login
from roost.errors import RoostError


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


@click.command()
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

    from roost import logs
    from roost.web import serving
    from roost.web.app import create_app
    from roost.web.ingest_process import IngestProcesses, Server

    settings = load_settings(data=data, host=host, port=port)
    logs.configure(settings.log_level, settings.log_format)
    if not 1 <= settings.ingest_processes <= 64:
        raise click.ClickException(
            f"setting ingest_processes: must be 1–64 (got {settings.ingest_processes})"
        )
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
        apply_at_start(metadata, config.config_file(settings.data))
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
    processes = IngestProcesses(settings, listening) if settings.ingest_processes > 1 else None
    sockets = [listening] if processes is None else [listening, processes.http_socket]
    app = create_app(settings, attach=processes.attached if processes is not None else None)
    server_config = serving.config(app, settings)
    try:
        Server(server_config, processes).run(sockets=sockets)
    finally:
        if processes is not None:
            processes.close()
        with contextlib.suppress(FileNotFoundError):
            state.unlink()  # ours: the lock on the data dir says no other server wrote it
        held.close()


@click.command()
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


COMMANDS = [serve, worker]
