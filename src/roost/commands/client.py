"""`roost send`, `query`, `tail`, `trace`, `quarantine` and `builds`: through the running server's HTTP
API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
import httpx

from roost.commands.common import (
    borrowed_key,
    data_option,
    format_table,
    json_option,
    load_settings,
    post_json,
    server_options,
    server_url,
)


@click.command()
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


@click.command()
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
    answered(response)
    result = response.json()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(format_table(result["columns"], result["rows"]))
    if result.get("truncated"):
        click.echo("(truncated at the row limit)")


@click.command()
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


@click.command()
@data_option
@click.argument("message_id")
@server_options
@click.option(
    "--key", envvar="ROOST_READ_KEY", default=None, help="Read key (default: a temporary one)."
)
@json_option
def trace(
    data: str | None, message_id: str, url: str | None, project: str, key: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Where an event went, by its messageId: stored, and what each destination did."""
    settings = load_settings(data=data)
    with borrowed_key(data, project, "read", key) as raw:
        target = f"{server_url(settings, url)}/api/v1/events/{quote(message_id, safe='')}/trace"
        response = httpx.get(target, headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    answered(response)
    found = response.json()
    if as_json:
        click.echo(json.dumps(found))
        return
    for time in found.get("refused", []):
        kept = "deduplicated" if time["stored"] else "refused"
        click.echo(f"{found['message_id']}: {kept} at {time['at']} ({time['dialect']}): "
                   f"{time['message']}")  # fmt: skip
    if held := found.get("quarantined"):
        click.echo(f"{found['message_id']}: held in the quarantine since {held['held_at']} "
                   f"({held['reason']}): {held['message']}")  # fmt: skip
    if found["stored"] is None:
        return
    event = found["event"]
    click.echo(f"{found['message_id']}: {event['type']} {event['event'] or ''}".rstrip())
    click.echo(f"  received {found['received']['at']} ({found['received']['dialect']}), "
               f"stored at Log offset {found['stored']['log_offset']}")  # fmt: skip
    for name, value in found["pipeline"].items():
        click.echo(f"  pipeline: {name}: {value}")
    for d in found["destinations"]:
        details = ", ".join(f"{k} {v}" for k, v in d.items()
                            if k not in ("name", "kind", "status") and v is not None)  # fmt: skip
        click.echo(f"  {d['name']} ({d['kind']}): {d['status']}{': ' + details if details else ''}")


@click.command()
@data_option
@server_options
@click.option(
    "--replay", is_flag=True, help="Run them through the current pipeline (an admin key)."
)
@click.option(
    "--key", envvar="ROOST_ADMIN_KEY", default=None, help="Key (default: a temporary one)."
)
@json_option
def quarantine(
    data: str | None, url: str | None, project: str, replay: bool, key: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """The events the tracking plan blocked (kept with why); --replay once the plan is fixed."""
    settings = load_settings(data=data)
    base = f"{server_url(settings, url)}/api/v1/quarantine"
    with borrowed_key(data, project, "admin" if replay else "read", key) as raw:
        headers = {"Authorization": f"Bearer {raw}"}
        response = (httpx.post(f"{base}/replay", headers=headers, timeout=600) if replay
                    else httpx.get(base, headers=headers, timeout=30))  # fmt: skip
    answered(response)
    found = response.json()
    if as_json:
        click.echo(json.dumps(found))
    elif replay:
        click.echo(f"{found['stored']} stored, {found['still_held']} still held")
    else:
        click.echo(f"{found['count']} held")
        for e in found["events"]:
            click.echo(f"  {e['received_at'][:19]}  {e['message_id']}  {e['event'] or e['type']}: "
                       f"{e['message']}")  # fmt: skip


@click.command()
@data_option
@click.argument("earlier")
@click.argument("later")
@server_options
@click.option("--range", "date_range", default="30d", show_default=True,
              help="day, 7d, 30d, month, 12mo, all, …")  # fmt: skip
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--step", "steps", multiple=True, help="A funnel step's event (repeat, in order).")
@click.option("--window", default="1d", show_default=True, help="The funnel's window.")
@click.option(
    "--key", envvar="ROOST_READ_KEY", default=None, help="Read key (default: a temporary one)."
)
@json_option
def builds(
    data: str | None, earlier: str, later: str, url: str | None, project: str, date_range: str,
    timezone: str, steps: tuple[str, ...], window: str, key: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Two builds (or app versions) compared: errors new and resolved, run and funnel
    completion with a significance test."""
    settings = load_settings(data=data)
    body: dict[str, Any] = {"builds": [earlier, later], "date_range": date_range,
                            "timezone": timezone}  # fmt: skip
    if steps:
        body["funnel"] = {"steps": list(steps), "window": window}
    with borrowed_key(data, project, "read", key) as raw:
        response = post_json(f"{server_url(settings, url)}/api/v1/reports/builds", raw, body)
    answered(response)
    found = response.json()
    if as_json:
        click.echo(json.dumps(found))
        return
    click.echo(format_table(
        ["build", "sessions", "players", "error signatures"],
        [[b["build"], b["sessions"], b["players"], b["error_signatures"]] for b in found["builds"]],
    ))  # fmt: skip

    def tested(c: dict[str, Any]) -> list[Any]:
        return [
            c["before"],
            c["after"],
            c["change"],
            c["p_value"],
            "yes" if c["significant"] else "",
        ]

    tests = ["before %", "after %", "change", "p", "significant"]
    if found["runs"]:
        click.echo("\nRun completion")
        click.echo(format_table(["run", *tests],
                                [[r["run"], *tested(r["completion"])] for r in found["runs"]]))  # fmt: skip
    if found["funnel"]:
        click.echo("\nFunnel, each step from the one before")
        click.echo(format_table(["step", *tests], [
            [s["label"], *tested(s["from_previous"])] for s in found["funnel"][1:]
        ]))  # fmt: skip
    for kind in ("new", "resolved"):
        listed = found["errors"][kind]
        click.echo(f"\nErrors {kind} in {later}: {len(listed)}")
        for e in listed:
            click.echo(f"  {e['signature']}  ({e['occurrences']} times, {e['players']} players)")
    click.echo(f"\n({found['test']})")


def answered(response: httpx.Response) -> None:
    """A ClickException with the API's own message unless the server answered 200."""
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise click.ClickException(f"{response.status_code}: {message}")


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


COMMANDS = [send, query, tail, trace, quarantine, builds]
