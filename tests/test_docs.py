"""The README lists every setting and every CLI command (Datasette's test_docs.py)."""

from __future__ import annotations

from pathlib import Path

import click

from roost import cli, config

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for name, field in config.FIELDS.items():
        assert f"`{name}`" in README, f"README does not list the setting {name}"
        assert f"`ROOST_{name.upper()}`" in README, f"README does not name ROOST_{name.upper()}"
        assert str(field.default).lower() in README.lower() or field.default == ""


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
