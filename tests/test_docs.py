"""The documentation: a short README that is a front door, and reference pages in docs/ that
list every setting and every CLI command (after Datasette's test_docs.py), with no link that
leads nowhere in a clone."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from roost import cli, config

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
PAGES = {p.name: p.read_text() for p in sorted(DOCS.glob("*.md"))}


def test_the_readme_is_a_front_door() -> None:
    lines = README.count("\n")
    assert lines <= 200, f"README.md has {lines} lines; the reference belongs in docs/"
    assert "make run" in README and "make test" in README
    for path in ("/v1/track", "/api/v1/events", "/api/v1/events/pageview", "/post"):
        assert path in README, f"the README's curl for {path} is gone"
    for name in PAGES:
        assert f"(docs/{name})" in README, f"README does not lead to docs/{name}"


def test_every_setting_is_documented() -> None:
    page = PAGES["configuration.md"]
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
        assert row in page, f"docs/configuration.md's table lacks, or has stale: {row}"


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
        assert f"`{command}" in PAGES["cli.md"], f"docs/cli.md does not document `{command}`"


@pytest.mark.parametrize("name", ["README.md", *PAGES])
def test_every_relative_link_resolves(name: str) -> None:
    path = ROOT / name if name == "README.md" else DOCS / name
    text = path.read_text()
    assert "../shared" not in text, f"{name} points outside the repository"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        assert (path.parent / target).exists(), f"{name}: {target} does not exist"
