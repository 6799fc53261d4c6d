"""The README lists every setting and every CLI command (Datasette's test_docs.py)."""

from __future__ import annotations

from pathlib import Path

import click

from roost import cli, config

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for name, field in config.FIELDS.items():
        default = field.default
        shown = (
            "(empty)"
            if default == ""
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
        row = f"| `{name}` | `ROOST_{name.upper()}` | `{shown}` | {field.metadata['help']} |"
        assert row in README, f"README's configuration table lacks, or has stale: {row}"


def _commands(group: click.Group, prefix: str = "roost") -> list[str]:
    names = []
    for name, command in group.commands.items():
        full = f"{prefix} {name}"
        if isinstance(command, click.Group):
            names += _commands(command, full)
        else:
            names.append(full)
    return names


def test_every_command_is_documented() -> None:
    for command in _commands(cli.main):
        assert f"`{command}" in README, f"README does not document `{command}`"
