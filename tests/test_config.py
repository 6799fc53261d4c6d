"""Settings: defaults, roost.toml, ROOST_* variables, flags — in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost import config
from roost.errors import BadRequest


def test_precedence(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "roost.toml").write_text("port = 9000\nsql_max_rows = 7\nhost = '0.0.0.0'\n")
    env = {"ROOST_DATA": str(data), "ROOST_PORT": "9100", "ROOST_TRUST_FORWARDED_FOR": "yes"}
    settings = config.load({"host": "127.0.0.2"}, environ=env)
    assert settings.port == 9100  # env beats the file
    assert settings.sql_max_rows == 7  # file beats the default
    assert settings.host == "127.0.0.2"  # flag beats all
    assert settings.trust_forwarded_for is True
    assert config.load(environ={}).port == 8000


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(BadRequest, match="setting port: expected int"):
        config.load(environ={"ROOST_PORT": "eighty"})
