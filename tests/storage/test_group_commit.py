"""Group commit: one commit at a time on the writer thread; what arrives meanwhile is the
next group; the event loop never waits for the disk."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest

from roost.errors import BackendError
from roost.model import Event
from roost.storage.log.group_commit import GroupCommit


def events(n: int) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(message_id=f"m{i}", project_id=1, dialect="segment", type="track",
              timestamp=now, received_at=now)
        for i in range(n)
    ]  # fmt: skip


class SlowDisk:
    """A commit that takes `seconds` (an fsync), recording each group and its thread."""

    def __init__(self, seconds: float = 0.05, fail_on: int | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.groups: list[int] = []
        self.threads: set[int] = set()
        self.next_offset = 1

    def __call__(self, batch: list[Event]) -> int:
        self.threads.add(threading.get_ident())
        time.sleep(self.seconds)
        if self.fail_on is not None and len(self.groups) == self.fail_on:
            self.groups.append(-len(batch))
            raise OSError("disk I/O error")
        self.groups.append(len(batch))
        first, self.next_offset = self.next_offset, self.next_offset + len(batch)
        return first


def test_what_arrives_during_a_commit_is_the_next_group() -> None:
    disk = SlowDisk()

    async def run() -> list[list[int]]:
        writer = GroupCommit(disk, max_events=10_000)
        first = writer.submit(events(1))
        await asyncio.sleep(0.01)  # the first commit is under way
        rest = [writer.submit(events(2)) for _ in range(5)]
        return [await f for f in [first, *rest]]

    offsets = asyncio.run(run())
    assert disk.groups == [1, 10]
    assert offsets == [[1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]
    assert threading.get_ident() not in disk.threads


def test_the_loop_runs_while_the_disk_works() -> None:
    disk = SlowDisk(seconds=0.2)

    async def run() -> int:
        writer = GroupCommit(disk, max_events=10_000)
        pending = writer.submit(events(1))
        ticks = 0
        while not pending.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return ticks

    assert asyncio.run(run()) >= 10


def test_a_failed_commit_fails_its_group_alone() -> None:
    disk = SlowDisk(seconds=0.02, fail_on=1)

    async def run() -> list[object]:
        writer = GroupCommit(disk, max_events=10_000)
        first = writer.submit(events(1))
        await asyncio.sleep(0.005)
        second = writer.submit(events(3))  # the group that fails
        await asyncio.sleep(0.03)
        third = writer.submit(events(2))
        return await asyncio.gather(first, second, third, return_exceptions=True)

    first, second, third = asyncio.run(run())
    assert first == [1]
    assert isinstance(second, BackendError) and "disk I/O error" in second.message
    assert third == [2, 3]


def test_a_group_holds_at_most_max_events_but_never_splits_a_request() -> None:
    disk = SlowDisk(seconds=0.02)

    async def run() -> None:
        writer = GroupCommit(disk, max_events=5)
        futures = [writer.submit(events(n)) for n in (1, 3, 3, 7, 1)]
        await asyncio.gather(*futures)

    asyncio.run(run())
    assert disk.groups == [4, 3, 7, 1]


def test_close_commits_what_waits_after_the_commit_under_way() -> None:
    disk = SlowDisk(seconds=0.05)

    async def run() -> tuple[list[int], list[int]]:
        writer = GroupCommit(disk, max_events=10_000)
        first = writer.submit(events(2))
        await asyncio.sleep(0.01)
        second = writer.submit(events(3))
        writer.close()  # as drain does, on the loop
        assert disk.groups == [2, 3]
        late = writer.submit(events(1))
        with pytest.raises(BackendError):
            await late
        return await first, await second

    assert asyncio.run(run()) == ([1, 2], [3, 4, 5])
