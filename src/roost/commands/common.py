"""What the `roost` commands share: options, the metadata store, JSON and table output."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import httpx
import msgspec

from roost import config
from roost.errors import RoostError
from roost.storage.metadata import Metadata

F = TypeVar("F", bound=Callable[..., Any])
SERVER_FILE = "server.json"


def data_option(fn: F) -> F:
    return click.option(
        "--data",
        envvar="ROOST_DATA",
        type=click.Path(file_okay=False),
        default=None,
        help="Data directory (default ./data, or ROOST_DATA).",
    )(fn)


def server_options(fn: F) -> F:
    """--url and --project, for the commands that talk to a running server."""
    fn = click.option("--project", default="default", show_default=True)(fn)
    return click.option("--url", default=None, help="Server URL (default: the running server's).")(
        fn
    )


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


@contextlib.contextmanager
def metadata_for(
    data: str | None, *, create: bool = False
) -> Iterator[tuple[config.Settings, Metadata]]:
    """The settings and the metadata store of a data directory, which must exist unless
    `create` (`roost serve` and the commands that make a workspace, a project or a project's
    configuration make one; a typo in --data given to any other must not)."""
    settings = load_settings(data=data)
    if create:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    elif not settings.data_dir.is_dir():
        raise click.ClickException(
            f"no data directory at {settings.data_dir} (`roost serve`, `roost workspaces "
            "create` or `roost projects create` makes one; give --data or ROOST_DATA)"
        )
    metadata = Metadata(settings.resolved_metadata_url())
    try:
        yield settings, metadata
    except RoostError as error:
        raise click.ClickException(error.message) from None
    finally:
        metadata.close()


def load_settings(**flags: Any) -> config.Settings:
    try:
        return config.load(flags)
    except RoostError as error:
        raise click.ClickException(error.message) from None


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, default=str))


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in columns]] + [
        ["" if v is None else str(v) for v in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)


def server_url(settings: config.Settings, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    state = settings.data_dir / SERVER_FILE
    if state.is_file():
        return str(json.loads(state.read_text())["url"])
    return f"http://{display_host(settings.host)}:{settings.port}"


@contextlib.contextmanager
def borrowed_key(data: str | None, project: str, kind: str, given: str | None) -> Iterator[str]:
    """The key given, or a key made for this one command and deleted after it."""
    if given:
        yield given
        return
    with metadata_for(data) as (_, metadata):
        key, raw = metadata.create_key(project, kind, label="cli (temporary)")
    try:
        yield raw
    finally:
        with metadata_for(data) as (_, metadata):
            metadata.delete_key(key.id)


def post_json(url: str, key: str, body: Any) -> httpx.Response:
    try:
        return httpx.post(
            url,
            content=msgspec.json.encode(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=60,
        )
    except httpx.HTTPError as error:
        raise click.ClickException(f"cannot reach Roost at {url}: {error}") from None


def call_server(data: str | None, url: str | None, project: str, kind: str, method: str, path: str,
                body: Any = None, timeout: float = 30) -> Any:  # fmt: skip
    """One request to the running server with a key of `kind` borrowed for it; its JSON."""
    settings = load_settings(data=data)
    with borrowed_key(data, project, kind, None) as raw:
        target = f"{server_url(settings, url)}{path}"
        try:
            response = httpx.request(
                method,
                target,
                content=msgspec.json.encode(body) if body is not None else None,
                headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
                timeout=timeout,
            )
        except httpx.HTTPError as error:
            raise click.ClickException(f"cannot reach Roost at {target}: {error}") from None
    if response.status_code != 200:
        problem = response.json().get("error", {}) if response.content else {}
        raise click.ClickException(problem.get("message") or f"HTTP {response.status_code}")
    return response.json()
