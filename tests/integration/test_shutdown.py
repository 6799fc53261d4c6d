"""Clean shutdown: SIGTERM mid-load; every acknowledged event is stored, and the exit is 0."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import Server, create_key
from tests.integration.test_durability import load

pytestmark = pytest.mark.slow


def test_sigterm_commits_what_was_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data, log_level="info").start()
    key = create_key(data, "write")
    read = create_key(data, "read")
    acked: set[str] = set()
    refused: set[str] = set()

    async def run() -> int:
        task = asyncio.ensure_future(load(server.url, key, acked, refused, time.monotonic() + 30))
        while len(acked) < 2000:
            await asyncio.sleep(0.05)
        code = await asyncio.to_thread(server.stop)  # SIGTERM: stop accepting, finish in-flight
        await task
        return code

    assert asyncio.run(run()) == 0
    assert '"store closed"' in server.output
    restarted = Server(data, port=server.port, sql_max_rows="10000000").start()
    try:
        ready = httpx.get(f"{restarted.url}/readyz").json()
        assert ready["loaded_offset"] == ready["last_offset"]
        response = httpx.post(
            f"{restarted.url}/api/v1/sql",
            json={"sql": "select message_id from events"},
            headers={"Authorization": f"Bearer {read}"},
            timeout=30,
        )
        stored = {row[0] for row in response.json()["rows"]}
    finally:
        restarted.stop()
    assert acked <= stored
    assert not (refused & stored)
