"""The Log/Warehouse contract, run on every backend (one parametrized fixture).

Issue 6 adds the cluster backends to `BACKENDS`; every test here then runs on them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from roost.model import Event
from roost.storage.duckdb import DuckDBStore

BACKENDS = ["duckdb"]


def open_backend(name: str, path: Path) -> Any:
    if name == "duckdb":
        return DuckDBStore(path / "events.duckdb")
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield request.param, tmp_path


def event(n: int, project: int = 1, when: datetime | None = None) -> Event:
    now = when or datetime.now(UTC)
    return Event(
        message_id=f"m{n}",
        project_id=project,
        dialect="segment",
        type="track",
        event=f"E{n}",
        user_id="u",
        timestamp=now,
        received_at=now,
        properties={"n": n, "nested": {"a": [1, 2]}},
        context={"library": {"name": "test"}},
    )


def test_append_gives_increasing_offsets_and_read_follows(backend: tuple[str, Path]) -> None:
    store = open_backend(*backend)

    async def run() -> None:
        first = await store.append([event(1), event(2)])
        second, third = await asyncio.gather(store.append([event(3)]), store.append([event(4), event(5)]))
        offsets = first + second + third
        assert sorted(offsets) == offsets or sorted(offsets) == sorted(set(offsets))
        assert len(set(offsets)) == 5 and min(offsets) == 1 and max(offsets) == 5
        assert first == [1, 2]
        logged = await store.read(0, 100)
        assert [e.offset for e in logged] == [1, 2, 3, 4, 5]
        assert (await store.read(2, 2))[0].offset == 3
        assert len(await store.read(2, 2)) == 2
        assert await store.read(5, 10) == []
        assert logged[0].event.properties == {"n": 1, "nested": {"a": [1, 2]}}
        assert logged[0].event.message_id == "m1"
        assert store.last_offset() == 5
        await store.close()

    asyncio.run(run())


def test_acknowledged_events_survive_reopen(backend: tuple[str, Path]) -> None:
    async def write() -> None:
        store = open_backend(*backend)
        await store.append([event(n) for n in range(100)])
        await store.close()

    asyncio.run(write())

    async def check() -> None:
        store = open_backend(*backend)
        assert store.last_offset() == 100
        assert [e.offset for e in await store.read(98, 10)] == [99, 100]
        assert await store.append([event(101)]) == [101]
        await store.close()

    asyncio.run(check())


def test_warehouse_counts_and_recent_ids(backend: tuple[str, Path]) -> None:
    store = open_backend(*backend)
    old = datetime(2026, 1, 1, tzinfo=UTC)

    async def run() -> None:
        await store.append([event(1, 1, old), event(2, 1), event(3, 2), event(4, 3)])
        since = datetime.now(UTC) - timedelta(hours=1)
        assert store.count_since([1, 2], since) == 2
        assert store.count_since([1], old) == 2
        assert store.count_since([], old) == 0
        recent = {(p, m) for p, m, _ in store.recent_message_ids(since)}
        assert recent == {(1, "m2"), (2, "m3"), (3, "m4")}
        await store.close()

    asyncio.run(run())


def test_project_sql_sees_only_its_project(backend: tuple[str, Path]) -> None:
    store = open_backend(*backend)

    async def run() -> None:
        await store.append([event(1, 1), event(2, 2), event(3, 2)])
        result = store.project_sql(2, "select event from events order by event", timeout=5, max_rows=10)
        assert result.columns == ["event"]
        assert result.rows == [["E2"], ["E3"]]
        limited = store.project_sql(2, "select event from events", timeout=5, max_rows=1)
        assert limited.truncated and len(limited.rows) == 1
        await store.close()

    asyncio.run(run())
