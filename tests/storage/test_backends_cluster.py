"""Splitting ingest from the consumers needs backends several processes can share."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from roost.cli import main
from roost.errors import BadRequest
from roost.runtime import Runtime
from tests.conftest import make_settings


def test_workers_mode_refuses_the_embedded_backends(tmp_path: Path) -> None:
    with pytest.raises(BadRequest) as refused:
        Runtime(make_settings(tmp_path, consumers="workers", warehouse_url="", log_url=""))
    assert refused.value.field == "log_url" and "nats://" in str(refused.value)


def test_roost_worker_says_what_it_needs(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["worker", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert "log_url" in result.output and "nats://" in result.output
