"""The `roost` command: serve, and manage workspaces, projects and keys, send, query.

Management commands write the metadata store directly (SQLite in WAL mode allows it while
the server runs; key changes reach the server within `key_cache_seconds`). `send` and
`query` go through the running server's HTTP API, since the server holds the event store;
without a key given they make a short-lived key, use it, and delete it.
"""

from __future__ import annotations

import click

from roost.commands import (
    client,
    cluster,
    contracts,
    erasures,
    keys,
    pipeline,
    projects,
    serve,
    transfer,
    users,
    workspaces,
)


@click.group()
@click.version_option(package_name="roost")
def main() -> None:
    """Roost: self-hosted event collection and product analytics."""


for module in (serve, workspaces, projects, keys, contracts, pipeline, users, erasures, client,
               transfer, cluster):  # fmt: skip
    for command in module.COMMANDS:
        main.add_command(command)
