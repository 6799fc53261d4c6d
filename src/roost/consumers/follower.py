"""What every consumer that follows the Log on its own thread shares.

A Follower wakes every `interval` (or when poked) and runs one `step()`; readers that must
see everything acknowledged so far await `caught_up(offset)`, which pokes it and waits for
its `position()`. `stop()` ends the thread and runs `finish()` on the caller's thread, so
what was acknowledged before a clean shutdown is applied. A failing step is logged and
retried after half a second; the events stay in the Log meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from abc import ABC, abstractmethod

from roost.errors import BackendError

log = logging.getLogger("roost.storage")


class Follower(ABC):
    name = "roost-follower"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._waiters = 0
        self._poked = False  # a poke not yet answered by a step: the next one runs at once
        self._said_at = float("-inf")  # when a pause was last logged

    @abstractmethod
    def position(self) -> int:
        """The highest Log offset this follower has fully handled."""

    @abstractmethod
    def step(self) -> None:
        """One round of work, on the follower's thread."""

    def finish(self) -> None:  # noqa: B027 - an optional hook
        """What is left to do at a clean stop, on the caller's thread (by default nothing)."""

    def failed(self) -> None:  # noqa: B027 - an optional hook
        """Called after a step raised (for a metric, say; by default nothing)."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Run a step now rather than at the next interval (or, if one is running, right
        after it: a poke is never lost)."""
        with self._wake:
            self._poked = True
            self._wake.notify()

    async def caught_up(self, offset: int, timeout: float) -> bool:
        """Wait until `position()` reaches `offset`; False on timeout."""
        if self.position() >= offset:
            return True
        deadline = time.monotonic() + timeout
        delay = 0.001
        self._waiters += 1
        try:
            self.poke()
            while self.position() < offset:
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.02)
            return True
        finally:
            self._waiters -= 1

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        self.finish()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._poked:
                    self._wake.wait(timeout=self.interval)
                self._poked = False
                if self._stopping:
                    return
            try:
                self.step()
            except BackendError as exc:  # a condition (a full disk, a store away), not a bug
                self.failed()
                if time.monotonic() - self._said_at > 60:
                    self._said_at = time.monotonic()
                    log.warning("%s paused: %s", self.name, exc.message)
                time.sleep(1.0)
            except Exception:
                self.failed()
                log.exception("%s failed; retrying", self.name)
                time.sleep(0.5)
