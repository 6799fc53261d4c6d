"""Logins, throttled: password guessing is slowed per account and per address, and the
argon2 hashing runs on a few threads of its own, so a flood of logins cannot take the CPU or
the shared thread pool from ingest and queries."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from roost.errors import RateLimited

WINDOW_SECONDS = 900.0
PER_ACCOUNT = 5  # failed logins per account in the window before it must wait
PER_ADDRESS = 20  # failed logins per client address in the window
HASHING_THREADS = 2
WAITING = 16  # logins waiting for a hashing thread beyond which more are refused
MAX_TRACKED = 100_000

T = TypeVar("T")


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._pool = ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="roost-login")
        self._waiting = 0

    def _recent(self, name: str) -> deque[float]:
        found = self._failures.get(name)
        if found is None:
            if len(self._failures) >= MAX_TRACKED:
                self._failures.clear()
            found = self._failures[name] = deque()
        horizon = self.clock() - WINDOW_SECONDS
        while found and found[0] <= horizon:
            found.popleft()
        return found

    @staticmethod
    def _names(email: str, address: str | None) -> tuple[str, str]:
        # the email is what a client typed: bounded, as an address may be (RFC 5321: 254)
        return f"account:{email.strip().lower()[:254]}", f"address:{address}"

    def check(self, email: str, address: str | None) -> None:
        """Raise RateLimited (with the wait) when the account or the address must wait."""
        account, place = self._names(email, address)
        for name, most in ((account, PER_ACCOUNT), (place, PER_ADDRESS)):
            recent = self._recent(name)
            if len(recent) >= most:
                wait = recent[len(recent) - most] + WINDOW_SECONDS - self.clock()
                raise RateLimited(
                    f"Too many failed logins; try again in {max(1, int(wait) + 1)} seconds.",
                    retry_after=max(1, int(wait) + 1),
                )

    def failed(self, email: str, address: str | None) -> None:
        now = self.clock()
        for name in self._names(email, address):
            self._recent(name).append(now)

    def succeeded(self, email: str) -> None:
        self._failures.pop(self._names(email, None)[0], None)

    async def hash(self, work: Callable[[], T]) -> T:
        """Run password hashing on the login threads; refuse when too many already wait."""
        with self._queued():
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    @contextmanager
    def _queued(self) -> Iterator[None]:
        if self._waiting >= WAITING + HASHING_THREADS:
            raise RateLimited("Too many logins at once; try again in a few seconds.", retry_after=2)
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
