"""`make run` installs what serving needs and no dev tool; `make test` adds the dev extras."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DEV_TOOLS = ("pytest", "mypy", "ruff", "playwright", "hypothesis")


def dry_run(target: str, tmp_path: Path) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"  # not made: -n only prints what would run
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return done.stdout


def test_make_run_installs_no_dev_extra(tmp_path: Path) -> None:
    commands = dry_run("run", tmp_path)
    installs = [line for line in commands.splitlines() if "pip install" in line]
    assert installs, commands
    assert not [line for line in installs if "[dev]" in line or "dev" in line.split()], installs
    assert "roost serve" in commands


def test_make_test_installs_the_dev_extras(tmp_path: Path) -> None:
    assert ".[dev]" in dry_run("test", tmp_path)


def test_serving_depends_on_no_dev_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("[")[0].split("=")[0].strip() for d in project["dependencies"]]
    assert not set(names) & set(DEV_TOOLS), names
    assert {"playwright", "pytest", "mypy"} <= {
        d.split(">")[0].strip() for d in project["optional-dependencies"]["dev"]
    }
