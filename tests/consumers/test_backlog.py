"""Ingest waits while the Warehouse is too far behind, and only then; a Loader that stopped
loading never holds it; and a Loader told of new events while it loads goes on at once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from roost.consumers import backlog as backlog_module
from roost.consumers.backlog import Backlog
from roost.consumers.follower import Follower


class Behind:
    def __init__(self, events: int) -> None:
        self.events = events

    def __call__(self) -> int:
        return self.events


def test_a_request_waits_only_while_the_backlog_is_over_the_limit() -> None:
    behind = Behind(100)
    backlog = Backlog(behind, limit=100)

    async def scenario() -> float:
        backlog.loaded()  # the Loader works
        await asyncio.wait_for(backlog.admit(), 0.1)  # at the limit: at once
        behind.events = 101
        admitted = asyncio.ensure_future(backlog.admit())
        await asyncio.sleep(0.1)
        assert not admitted.done() and backlog.held == 1
        started = time.monotonic()

        def load() -> None:  # the Loader's thread: a load done, the backlog under the limit
            behind.events = 40
            backlog.loaded()

        threading.Thread(target=load).start()
        await asyncio.wait_for(admitted, 1.0)
        assert backlog.held == 0
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert waited < backlog_module.WAIT_SECONDS  # woken by the load, not by its own timer


def test_a_loader_that_stopped_loading_never_holds_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backlog_module, "STALLED_SECONDS", 0.3)
    backlog = Backlog(Behind(10_000), limit=100)

    async def scenario() -> None:
        await asyncio.wait_for(backlog.admit(), 0.1)  # not loading yet: let through at once
        backlog.loaded()
        admitted = asyncio.ensure_future(backlog.admit())
        await asyncio.sleep(0.1)
        assert not admitted.done()  # it loaded just now: held
        await asyncio.wait_for(admitted, 1.0)  # no load since for 0.3 s: let through
        await asyncio.wait_for(backlog.admit(), 0.1)  # and the next at once

    asyncio.run(scenario())


def test_no_limit_or_no_loader_here_never_holds() -> None:
    async def scenario() -> None:
        await asyncio.wait_for(Backlog(Behind(10**9), limit=0).admit(), 0.1)
        await asyncio.wait_for(Backlog(None, limit=100).admit(), 0.1)

    asyncio.run(scenario())


class Stepper(Follower):
    """Pokes itself from another thread during its first step, as a commit does."""

    def __init__(self) -> None:
        super().__init__(interval=30.0)
        self.steps: list[float] = []
        self.second = threading.Event()

    def position(self) -> int:
        return 0

    def step(self) -> None:
        self.steps.append(time.monotonic())
        if len(self.steps) == 1:
            poker = threading.Thread(target=self.poke)
            poker.start()
            poker.join()  # the poke arrives while this step runs
        elif len(self.steps) == 2:
            self.second.set()


def test_a_poke_during_a_step_runs_the_next_step_at_once() -> None:
    follower = Stepper()
    follower.start()
    try:
        follower.poke()
        assert follower.second.wait(5.0), "the poke during the step was lost: waited 30 s"
    finally:
        follower.stop()
