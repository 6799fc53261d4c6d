"""Debugger streams are bounded: a revoked key's open stream closes within
`key_cache_seconds`, a key may hold only so many open, and one that never reads loses its
own entries (counted for it) without holding ingest up."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.consumers.debugger import MAX_PER_HOLDER
from tests.integration.server import Server, create_key, roost

pytestmark = pytest.mark.slow


def test_a_revoked_keys_stream_closes_and_a_key_holds_only_so_many(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        read = create_key(data, "read")
        key_id = json.loads(roost("keys", "list", "--json", data=data).stdout)[-1]["id"]
        lines: list[str] = []
        opened = threading.Event()

        def listen() -> None:
            with httpx.stream(
                "GET", f"{server.url}/api/v1/debugger/stream",
                headers={"Authorization": f"Bearer {read}"}, timeout=30,
            ) as response:  # fmt: skip
                for line in response.iter_lines():
                    opened.set()
                    lines.append(line)

        first = threading.Thread(target=listen)
        first.start()
        assert opened.wait(10)
        others = [
            httpx.Client(timeout=30).send(
                httpx.Request("GET", f"{server.url}/api/v1/debugger/stream",
                              headers={"Authorization": f"Bearer {read}"}),
                stream=True,
            )
            for _ in range(MAX_PER_HOLDER - 1)
        ]  # fmt: skip
        assert all(r.status_code == 200 for r in others)
        one_more = httpx.get(
            f"{server.url}/api/v1/debugger/stream",
            headers={"Authorization": f"Bearer {read}"}, timeout=10,
        )  # fmt: skip
        assert one_more.status_code == 429 and "retry-after" in one_more.headers
        assert f"{MAX_PER_HOLDER} debugger streams" in one_more.json()["error"]["message"]

        roost("keys", "revoke", key_id, data=data)
        started = time.monotonic()
        first.join(timeout=15)
        assert not first.is_alive(), "the revoked key's stream is still open"
        assert time.monotonic() - started < 10
        assert "event: closed" in lines
        for response in others:
            response.close()
    finally:
        server.stop()


def test_a_subscriber_that_never_reads_loses_its_own_entries(tmp_path: Path) -> None:
    """Counted in `dropped` of the next entry it does get; publishing never waits on it."""
    import asyncio

    from roost.consumers.debugger import QUEUE_ENTRIES, Debugger

    async def run() -> dict[str, Any]:
        debugger = Debugger()
        stuck = debugger.subscribe(1, "key:a")
        for i in range(QUEUE_ENTRIES + 7):
            debugger.delivery(1, {"outcome": "delivered", "n": i})
        await asyncio.sleep(0)  # the deliveries were handed to the loop
        for _ in range(QUEUE_ENTRIES):
            stuck.queue.get_nowait()
        debugger.delivery(1, {"outcome": "delivered", "n": "after"})
        await asyncio.sleep(0)
        entries = debugger.entries(stuck, every=1)
        entry = await anext(entries)
        assert entry is not None and entry.outcome == b"delivered"
        return dict(json.loads(entry.body))

    entry = asyncio.run(run())
    assert (entry["n"], entry["dropped"]) == ("after", 7)
