"""`roost worker` taking its lease while JetStream cannot answer (a cluster electing a
leader) waits for it instead of dying, then loads what the Log holds."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from roost.consumers.worker import Worker
from roost.devtools.servers import Nats, free_port
from roost.model import Event
from roost.storage.log.jetstream import NatsLog
from roost.storage.warehouse.clickhouse import ClickHouseWarehouse
from tests.conftest import fresh_clickhouse_url, make_settings

pytestmark = pytest.mark.slow


def test_a_worker_waits_for_unreachable_stores_then_works(tmp_path: Path) -> None:
    nats = Nats()
    nats.port = free_port()  # nothing listens there yet
    nats.url = f"nats://127.0.0.1:{nats.port}"
    warehouse_url = fresh_clickhouse_url()
    settings = make_settings(
        tmp_path, log_url=nats.url, warehouse_url=warehouse_url, consumers="workers"
    )
    worker = Worker(settings)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    thread.start()
    try:
        time.sleep(3)  # several tries at a Log that is not there
        assert thread.is_alive() and not result, "the worker gave up"
        nats.start()
        log = NatsLog(nats.url)
        now = datetime.now(UTC)
        event = Event(message_id="m1", project_id=1, dialect="segment", type="track",
                      event="E", user_id="u", timestamp=now, received_at=now)  # fmt: skip

        async def append() -> list[int]:
            return await log.append([event])

        (offset,) = asyncio.run(append())
        reader = ClickHouseWarehouse(warehouse_url)
        deadline = time.monotonic() + 60
        while reader.stored_offset() < offset and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reader.stored_offset() == offset, "the worker did not load once the Log was up"
        reader.close()
        log.close_sync()
    finally:
        worker.stop()
        thread.join(60)
        nats.stop()
    assert result == [0]
