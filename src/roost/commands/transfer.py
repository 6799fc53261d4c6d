"""`roost export` and `roost import`: events out of and into a running server, over HTTP.

Import reads NDJSON, one event a line, in any of the four dialects (docs/wire-contracts.md), Segment's
export format or Roost's own NDJSON export (restored as it was stored, through
`/api/v1/restore`), tells each line's dialect by its fields, and sends it the way that dialect
takes it: Segment and game events in batches, web and free-form events one by one. Going
through ingest, imported events are checked, enriched and deduplicated by messageId (a
game event's `event_id`) like any other, and keep their own times (`timestamp`, `ts`) —
except web events, whose dialect has no time field.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import click
import httpx
import msgspec

from roost.commands.common import (
    borrowed_key,
    data_option,
    load_settings,
    server_options,
    server_url,
)
from roost.dialects.restore import is_export_row

SEGMENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
BATCH = {"segment": 500, "game": 100, "restore": 500}  # events per request (game: its limit)


def dialect_of(event: Any) -> str | None:
    """Which dialect a decoded line speaks, by its fields; None if none."""
    if not isinstance(event, dict):
        return None
    if is_export_row(event):
        return "restore"
    if "player_hash" in event or ("build_version" in event and "session_id" in event):
        return "game"
    if "site_id" in event:
        return "web"
    if event.get("type") in SEGMENT_TYPES:
        return "segment"
    if "event_name" in event:
        return "freeform"
    return None


def _path(dialect: str, event: dict[str, Any]) -> str:
    if dialect == "web":
        return "/api/v1/events/custom" if "event_name" in event else "/api/v1/events/pageview"
    paths = {"segment": "/v1/batch", "game": "/api/v1/events", "freeform": "/post",
             "restore": "/api/v1/restore"}  # fmt: skip
    return paths[dialect]


class Importer:
    """Sends events the way each dialect takes them, over one keep-alive connection; Segment
    and game events wait in a batch per dialect until it is full (or `flush`)."""

    def __init__(self, base: str, key: str, restore_key: Callable[[], str] | None = None) -> None:
        self.base = base
        self.restore_key = restore_key  # an admin key, asked for at the first export row
        self.client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=120,
        )
        self.accepted = 0
        self.rejected = 0
        self.problems: list[str] = []
        self.pending: dict[str, list[tuple[int, dict[str, Any]]]] = {d: [] for d in BATCH}

    def add(self, line_no: int, dialect: str, event: dict[str, Any]) -> None:
        if dialect in BATCH:
            waiting = self.pending[dialect]
            waiting.append((line_no, event))
            if len(waiting) >= BATCH[dialect]:
                self._flush(dialect)
            return
        self._send(dialect, [(line_no, event)], event)

    def flush(self) -> None:
        for dialect in BATCH:
            self._flush(dialect)

    def close(self) -> None:
        self.flush()
        self.client.close()

    def _flush(self, dialect: str) -> None:
        lines = self.pending[dialect]
        if lines:
            body = {"batch" if dialect == "segment" else "events": [e for _, e in lines]}
            self._send(dialect, lines, body)
            self.pending[dialect] = []

    def refuse(self, line_no: int, message: str) -> None:
        self.rejected += 1
        if len(self.problems) < 20:
            self.problems.append(f"line {line_no}: {message}")

    def _send(self, dialect: str, lines: list[tuple[int, dict[str, Any]]], body: Any) -> None:
        headers = {}
        if dialect == "restore" and self.restore_key is not None:
            headers["Authorization"] = f"Bearer {self.restore_key()}"
        try:
            response = self.client.post(
                _path(dialect, lines[0][1]), content=msgspec.json.encode(body), headers=headers
            )
        except httpx.HTTPError as error:
            raise click.ClickException(f"cannot reach Roost at {self.base}: {error}") from None
        if response.status_code in (401, 403):
            raise click.ClickException(f"{response.status_code}: {response.text}")
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code >= 300:
            message = json.dumps(answer.get("error", answer)) if answer else response.text
            for line_no, _ in lines:
                self.refuse(line_no, f"{response.status_code} {message}")
            return
        errors = answer.get("errors", []) if isinstance(answer, dict) else []
        for refused in errors:
            self.refuse(lines[int(refused.get("index", 0))][0], str(refused.get("message")))
        self.accepted += len(lines) - len(errors)


def _lines(stream: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    for number, line in enumerate(stream, start=1):
        yield number, len(line), line.strip()


@click.command("import")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_options
@click.option(
    "--key", envvar="ROOST_WRITE_KEY", default=None, help="Write key (default: a temporary one)."
)
@click.option(
    "--admin-key",
    envvar="ROOST_ADMIN_KEY",
    default=None,
    help="Admin key for lines of Roost's own export, restored as stored (default: a temporary one).",
)
def import_events(
    data: str | None,
    file: Path,
    url: str | None,
    project: str,
    key: str | None,
    admin_key: str | None,
) -> None:
    """Send the events of an NDJSON file (any dialect, Segment's export or Roost's) to the server."""
    base = server_url(load_settings(data=data), url)
    with ExitStack() as stack:
        raw = stack.enter_context(borrowed_key(data, project, "write", key))
        stream = stack.enter_context(file.open("rb"))
        admin: list[str] = []

        def restore_key() -> str:  # borrowed only if the file holds export rows
            if not admin:
                admin.append(stack.enter_context(borrowed_key(data, project, "admin", admin_key)))
            return admin[0]

        importer = Importer(base, raw, restore_key)
        with click.progressbar(
            length=file.stat().st_size, label="Importing", file=sys.stderr
        ) as bar:
            for number, size, line in _lines(stream):
                bar.update(size)
                if not line:
                    continue
                try:
                    event = msgspec.json.decode(line)
                except msgspec.DecodeError as exc:
                    importer.refuse(number, f"not JSON ({exc})")
                    continue
                dialect = dialect_of(event)
                if dialect is None:
                    importer.refuse(
                        number, "not an event of any dialect (see docs/wire-contracts.md)"
                    )
                    continue
                importer.add(number, dialect, event)
            importer.close()
    for problem in importer.problems:
        click.echo(problem, err=True)
    click.echo(f"Imported {importer.accepted} events; {importer.rejected} refused.")
    if importer.rejected:
        raise SystemExit(1)


@click.command("export")
@data_option
@server_options
@click.option(
    "--key", envvar="ROOST_READ_KEY", default=None, help="Read key (default: a temporary one)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "csv", "parquet"]),
    default="ndjson",
    show_default=True,
)
@click.option("--since", default=None, help="Only events from this time (ISO 8601 with a zone).")
@click.option("--until", default=None, help="Only events before this time (ISO 8601 with a zone).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export_events(
    data: str | None,
    url: str | None,
    project: str,
    key: str | None,
    fmt: str,
    since: str | None,
    until: str | None,
    output: Path,
) -> None:
    """Write the project's events to a file, streamed from the server."""
    base = server_url(load_settings(data=data), url)
    params = {
        "format": fmt,
        **({"since": since} if since else {}),
        **({"until": until} if until else {}),
    }
    written = 0
    with borrowed_key(data, project, "read", key) as raw:
        try:
            with httpx.stream(
                "GET", f"{base}/api/v1/export", params=params,
                headers={"Authorization": f"Bearer {raw}"}, timeout=None,
            ) as response:  # fmt: skip
                if response.status_code != 200:
                    response.read()
                    raise click.ClickException(f"{response.status_code}: {response.text}")
                with output.open("wb") as out, click.progressbar(
                    length=0, label="Exporting", file=sys.stderr,
                    show_percent=False, show_pos=True,
                ) as bar:  # fmt: skip
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
        except httpx.HTTPError as error:
            raise click.ClickException(f"cannot reach Roost at {base}: {error}") from None
    click.echo(f"Wrote {written} bytes to {output}.")


COMMANDS = [import_events, export_events]


@click.command("demo")
@data_option
@server_options
@click.option(
    "--key", envvar="ROOST_WRITE_KEY", default=None, help="Write key (default: a temporary one)."
)
@click.option("--days", type=click.IntRange(1, 3650), default=28, show_default=True)
@click.option(
    "--scale",
    type=click.FloatRange(0.01, 10000),
    default=1.0,
    show_default=True,
    help="Traffic multiplier (1: ~40,000 events over 28 days).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--until", "until", default=None, help="Last day (YYYY-MM-DD; default: today, UTC).")
def demo(
    data: str | None,
    url: str | None,
    project: str,
    key: str | None,
    days: int,
    scale: float,
    seed: int,
    until: str | None,
) -> None:
    """Fill a project with realistic demo traffic: a website, a game and a SaaS app.

    The same options give the same events (and messageIds: sending twice stores once).
    """
    from datetime import date as date_type

    from roost.devtools.demo import generate

    last = date_type.fromisoformat(until) if until else None
    base = server_url(load_settings(data=data), url)
    with borrowed_key(data, project, "write", key) as raw:
        importer = Importer(base, raw)
        with click.progressbar(length=days, label="Sending demo days", file=sys.stderr) as bar:
            for _, events in generate(seed, days, scale, last):
                for number, (dialect, event) in enumerate(events, start=1):
                    importer.add(number, dialect, event)
                bar.update(1)
            importer.close()
    for problem in importer.problems:
        click.echo(problem, err=True)
    click.echo(
        f"Sent {importer.accepted} demo events to project {project!r}; {importer.rejected} refused."
    )
    if importer.rejected:
        raise SystemExit(1)


def fill_demo(url: str, key: str, days: int = 28, seed: int = 42) -> None:
    """Send the demo to a server that is starting (`roost serve --demo`), once it is ready."""
    from roost.devtools.demo import generate
    from roost.devtools.servers import wait_until_ready

    wait_until_ready(url, 60)
    click.echo(f"Filling the project with {days} days of demo traffic…")
    importer = Importer(url, key)
    for _, events in generate(seed, days, 1.0, None):
        for number, (dialect, event) in enumerate(events, start=1):
            importer.add(number, dialect, event)
    importer.close()
    click.echo(f"Demo data ready: {importer.accepted} events.")


COMMANDS.append(demo)
