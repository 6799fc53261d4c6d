"""Durability: SIGKILL or SIGTERM a loaded `roost serve`; every acknowledged event is stored once.

Workers send batches mixing good events (unique messageIds) and bad ones (no user id), and
record which messageIds the server acknowledged. After the stop and a restart, each
acknowledged id is stored exactly once and no refused one is stored at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.server import Server, create_key

pytestmark = pytest.mark.slow


async def load(url: str, key: str, acked: set[str], refused: set[str], stop_at: float) -> None:
    async def worker(w: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            n = 0
            while time.monotonic() < stop_at:
                good = [f"w{w}-{n}-{i}" for i in range(20)]
                bad = f"w{w}-{n}-bad"
                n += 1
                batch = [
                    {"type": "track", "userId": "u", "event": "Load", "messageId": m} for m in good
                ]
                batch.append({"type": "track", "event": "Load", "messageId": bad})
                try:
                    response = await client.post("/v1/batch", json={"batch": batch}, auth=(key, ""))
                except httpx.HTTPError:
                    return  # the server is gone: these events are in flight, neither acked nor refused
                if response.status_code == 200:
                    body = response.json()
                    assert body["accepted"] == 20 and body["errors"][0]["index"] == 20
                    acked.update(good)
                    refused.add(bad)

    await asyncio.gather(*(worker(w) for w in range(16)))


def stop_under_load(
    server: Server, stop: Callable[[], object], after: int
) -> tuple[set[str], set[str], dict[str, int]]:
    """Load the server, call `stop` once `after` events were acked, restart, count what is stored."""
    key = create_key(server.data, "write")
    read = create_key(server.data, "read")
    acked: set[str] = set()
    refused: set[str] = set()

    async def run() -> None:
        task = asyncio.ensure_future(load(server.url, key, acked, refused, time.monotonic() + 30))
        while len(acked) < after:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(stop)
        await task

    asyncio.run(run())
    restarted = Server(server.data, port=server.port, sql_max_rows="10000000").start()
    try:
        ready = httpx.get(f"{restarted.url}/readyz").json()
        assert ready["loaded_offset"] == ready["last_offset"], "the warehouse did not catch up"
        response = httpx.post(
            f"{restarted.url}/api/v1/sql",
            json={"sql": "select message_id, count(*) as n from events group by message_id"},
            headers={"Authorization": f"Bearer {read}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        counts = {row[0]: row[1] for row in response.json()["rows"]}
    finally:
        restarted.stop()
    assert len(acked) >= after
    missing = acked - counts.keys()
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    assert all(n == 1 for n in counts.values()), "an event was stored twice"
    assert not (refused & counts.keys()), "a refused event was stored"
    return acked, refused, counts


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    stop_under_load(server, server.kill, after=5000)  # SIGKILL: no shutdown hook runs


def test_sigterm_commits_what_was_acknowledged_and_exits_0(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", log_level="info").start()
    codes: list[int] = []
    stop_under_load(server, lambda: codes.append(server.stop()), after=2000)
    assert codes == [0]
    assert '"store closed"' in server.output
