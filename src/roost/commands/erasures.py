"""`roost erase` and `roost erasures`: a user's data, or a time range's, erased through the
running server, and the record of erasures — with when each was gone from disk too."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from roost.commands.common import (
    call_server,
    data_option,
    echo_json,
    format_table,
    json_option,
    server_options,
)


@click.command("erase")
@data_option
@server_options
@click.argument("user_id", required=False)
@click.option("--since", default=None, help="With --until: erase events timed in [since, until).")
@click.option("--until", default=None, help="ISO 8601 with a zone, e.g. 2025-01-01T00:00:00Z.")
@json_option
def erase(
    data: str | None,
    url: str | None,
    project: str,
    user_id: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Erase USER_ID (its events under every linked id, its profile), or a time range."""
    if (user_id is None) == (since is None and until is None):
        raise click.UsageError("give a USER_ID, or --since and --until")
    if user_id is not None:
        path, body = f"/api/v1/users/{quote(user_id, safe='')}", None
        answer = call_server(data, url, project, "delete", "DELETE", path, timeout=120)
    else:
        body = {"since": since, "until": until}
        answer = call_server(data, url, project, "delete", "POST", "/api/v1/erasures", body, 120)
    if as_json:
        echo_json(answer)
        return
    click.echo(
        f"Erased {answer['events']} events ({answer['log_events']} in the Log) of "
        f"{_what(answer)}; gone from disk shortly: `roost erasures` says when."
    )


@click.command("erasures")
@data_option
@server_options
@json_option
def erasures(data: str | None, url: str | None, project: str, as_json: bool) -> None:
    """The record of erasures: what, when, by which key, and when it was gone from disk."""
    found = call_server(data, url, project, "delete", "GET", "/api/v1/erasures")["erasures"]
    if as_json:
        echo_json(found)
        return
    rows = [
        [
            e["id"],
            _what(e),
            e["events"],
            e["requested_at"],
            e["on_disk_at"] or "pending",
            e["key_id"],
        ]
        for e in found
    ]
    click.echo(format_table(["id", "erased", "events", "requested", "on disk", "key"], rows))


def _what(record: dict[str, Any]) -> str:
    if record["user_id"] is not None:
        return f"user {record['user_id']} ({', '.join(record['ids'])})"
    return f"{record['since']} to {record['until']}"


COMMANDS = [erase, erasures]
