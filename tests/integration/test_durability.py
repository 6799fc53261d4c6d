"""Durability: SIGKILL a loaded `roost serve`; every acknowledged event is there exactly once.

Workers send batches mixing good events (unique messageIds) and bad ones (no user id), and
record which messageIds the server acknowledged. After the kill and a restart, each
acknowledged id is stored exactly once and no refused one is stored at all.
"""

from __future__ import annotations

import asyncio
import time
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


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    key = create_key(data, "write")
    read = create_key(data, "read")
    acked: set[str] = set()
    refused: set[str] = set()

    async def run() -> None:
        task = asyncio.ensure_future(load(server.url, key, acked, refused, time.monotonic() + 30))
        while len(acked) < 5000:
            await asyncio.sleep(0.05)
        server.kill()  # SIGKILL mid-load: no shutdown hook runs
        await task

    asyncio.run(run())
    assert len(acked) >= 5000
    restarted = Server(data, port=server.port, sql_max_rows="10000000").start()
    try:
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
    missing = acked - counts.keys()
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    assert all(n == 1 for n in counts.values()), "an event was stored twice"
    assert not (refused & counts.keys()), "a refused event was stored"
