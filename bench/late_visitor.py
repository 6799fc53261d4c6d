"""One visitor who is never silent, its events' times in order or a few ms out of it.

    python bench/late_visitor.py [--order shuffled|in-order] [--seconds 30]

What a backend sending with a server-side library looks like to Roost: no client IP or
browser of its own, so every event is one cookieless visitor, whose visit never ends, and
the callers' timestamps arrive a little out of order. Eight clients send 100-event batches
as fast as the server answers; prints the events/s acknowledged every 5 s (ingest waits for
the Loader past `ingest_hold_behind`, so this is the Loader's pace) and the backlog at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import new_key, start_roost, wait_ready


async def load(url: str, key: str, shuffled: bool, seconds: float) -> None:
    sent = 0
    started = time.monotonic()
    stop = started + seconds

    async def client() -> None:
        nonlocal sent
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.monotonic() < stop:
                now = datetime.now(UTC)
                batch = [
                    {
                        "type": "track", "userId": "backend", "event": "Job",
                        "timestamp": (now - timedelta(milliseconds=random.uniform(0, 50)) if shuffled
                                      else now + timedelta(microseconds=i)).isoformat(),
                        "context": {"userAgent": "analytics-python/2.3"},
                    }
                    for i in range(100)
                ]  # fmt: skip
                response = await http.post("/v1/batch", json={"batch": batch}, auth=(key, ""))
                assert response.status_code == 200, response.text
                sent += len(batch)

    async def report() -> None:
        last = 0
        while time.monotonic() < stop:
            await asyncio.sleep(5)
            print(
                f"  {time.monotonic() - started:4.0f} s: {(sent - last) / 5:,.0f} events/s",
                flush=True,
            )
            last = sent

    await asyncio.gather(report(), *(client() for _ in range(8)))
    print(f"{sent / (time.monotonic() - started):,.0f} events/s acknowledged in all")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--order", choices=("shuffled", "in-order"), default="shuffled")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server, url = start_roost(data)
        try:
            wait_ready(url, "/readyz")
            asyncio.run(load(url, new_key(data, "write"), args.order == "shuffled", args.seconds))
            ready = httpx.get(url + "/readyz").json()
            print(
                f"not yet loaded at the end: {ready['last_offset'] - ready['loaded_offset']:,} events"
            )
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
