"""The Runtime opens and closes explicitly: making one touches nothing."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from roost.config import Settings
from roost.runtime import Runtime
from tests.conftest import make_settings


def test_making_a_runtime_opens_nothing_and_starts_no_thread(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    before = set(threading.enumerate())
    runtime = Runtime(settings)
    assert set(threading.enumerate()) == before
    assert not settings.data_dir.exists()
    assert not runtime.ready
    runtime.close_sync()  # closing what never opened is harmless


def test_an_async_context_opens_and_closes_it(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path / "data")

    async def use() -> tuple[bool, int]:
        async with Runtime(settings) as runtime:
            return runtime.ready, runtime.log.last_offset()

    before = set(threading.enumerate())
    ready, offset = asyncio.run(use())
    assert ready and offset == 0
    assert settings.data_dir.exists()
    leftover = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not leftover, f"threads still running after close: {leftover}"
