"""A full disk, for real (a small tmpfs as the data directory): ingest answers 503 and
acknowledges nothing it could not store, queries still answer, SIGTERM shuts down cleanly,
the server starts on a full disk, a SIGKILL meanwhile loses nothing acknowledged, and ingest
resumes once there is room — without filling the disk to the last byte."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server import Server, create_key
from tests.integration.services import missing

pytestmark = pytest.mark.slow
RESERVE_MB = 4


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB file system of its own (mounting one takes root: CI is)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        missing("root (to mount a small tmpfs)", "run the full-disk test as root, as CI does")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:  # in CI a failure, not a silent skip: the test must run there
        missing(f"a tmpfs mount ({mounted.stderr.strip()})", "run as root with CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave_mb: float) -> Path:
    """A file taking the disk's room down to `leave_mb` free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with filler.open("ab") as f:
        f.write(b"\0" * max(0, free - int(leave_mb * (1 << 20))))
    return filler


def track(server: Server, key: str, n: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/batch",
        json={"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{n}-{i}"}
                        for i in range(50)]},
        headers={"X-Write-Key": key}, timeout=10,
    )  # fmt: skip


def count(server: Server, key: str) -> int:
    answer = httpx.post(
        f"{server.url}/api/v1/sql", json={"sql": "select count(*) as n from events"},
        headers={"Authorization": f"Bearer {key}"}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return int(answer.json()["rows"][0][0])


def test_a_full_disk_is_a_503_and_nothing_acknowledged_is_lost(small_disk: Path) -> None:
    data = small_disk / "data"
    settings = {"disk_reserve_mb": str(RESERVE_MB), "log_level": "info"}
    server = Server(data, **settings).start()
    write, read = create_key(data, "write"), create_key(data, "read")
    acknowledged = 0
    for n in range(4):
        assert track(server, write, n).status_code == 200
        acknowledged += 50
    filler = fill(small_disk, RESERVE_MB / 2)  # inside the reserve: no more events
    time.sleep(0.5)  # free space is asked at most every 0.25 s
    refused = track(server, write, 99)
    assert refused.status_code == 503, refused.text
    assert "disk" in refused.text and "reserve" in refused.text
    assert count(server, read) == acknowledged  # queries still answer
    assert server.stop() == 0  # SIGTERM on a full disk: a clean shutdown
    assert "shutdown failed" not in server.output.lower(), server.output
    assert "Traceback" not in server.output, server.output

    again = Server(data, **settings).start()  # starts on a full disk
    assert track(again, write, 100).status_code == 503
    assert count(again, read) == acknowledged
    again.kill()  # a SIGKILL while the disk is full
    assert "Traceback" not in again.output, again.output
    assert "reserve" in again.output, again.output  # the start said why ingest is refused

    filler.unlink()  # room again
    third = Server(data, **settings).start()
    try:
        assert track(third, write, 101).status_code == 200
        assert count(third, read) == acknowledged + 50
    finally:
        assert third.stop() == 0
