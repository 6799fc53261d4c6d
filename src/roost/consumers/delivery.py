"""How a forwarder sends a batch (what it sends: outbound.py; the loop: forwarder.py): tried
until delivered or out of tries, with exponential backoff and "equal jitter" between tries,
or the Retry-After the destination gave (at most an hour); a batch out of tries, or refused
for good, is a dead letter. A plugin that raises anything but DeliveryError has a bug: the
batch is kept and tried again."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roost.destinations.base import DeliveryError
from roost.destinations.base import Destination as Plugin
from roost.storage.metadata.destinations import Destination

log = logging.getLogger("roost.forwarder")
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Tried:
    """A batch's end: delivered, or set aside with the last error, after `attempts` tries."""

    delivered: bool
    error: str
    attempts: int


# A delivery entry: (status, the batch's messageIds, first and last offset, details).
Publish = Callable[[str, list[str], int, int, dict[str, Any]], None]


class Delivery:
    def __init__(
        self,
        destination: Destination,
        plugin: Plugin,
        *,
        name: str,
        publish: Publish,
        failed: Callable[[str], None],
        pause: Callable[[float], bool],
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.destination = destination
        self.plugin = plugin
        self.name = name
        self.publish = publish  # a delivery entry (delivered, retrying, dead_letter)
        self.failed = failed  # a try failed with this message: the forwarder's state says so
        self.pause = pause  # wait this long between tries; True if stopping meanwhile
        self.jitter = jitter
        self.retry_at: float | None = None  # epoch seconds of the next try of a failing batch

    def report(
        self,
        status: str,
        events: list[dict[str, Any]],
        first: int,
        last: int,
        attempt: int,
        error: str | None = None,
        retry_in: float | None = None,
        letter: int | None = None,
    ) -> None:
        details = {"attempt": attempt, "error": error, "dead_letter": letter,
                   "retry_in": round(retry_in, 3) if retry_in is not None else None}  # fmt: skip
        self.publish(status, [e["messageId"] for e in events], first, last, details)

    def deliver(
        self, events: list[dict[str, Any]], first: int, last: int, letter: int | None = None
    ) -> Tried | None:
        """Try until delivered or out of tries: (delivered, last error, tries); None if stopping."""
        d = self.destination
        attempt = 0
        while True:
            attempt += 1
            try:
                self.plugin.deliver(events)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a plugin's bug: keep the batch, try again later
                log.exception("%s: destination raised", self.name)
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
            else:
                self.retry_at = None
                self.report("delivered", events, first, last, attempt, letter=letter)
                return Tried(True, "", attempt)
            final = not error.retry or attempt >= d.max_attempts
            self.failed(error.message)
            if final:
                self.retry_at = None
                self.report(
                    "dead_letter", events, first, last, attempt, error.message, letter=letter
                )
                log.warning("%s: batch %d-%d set aside: %s", self.name, first, last, error.message)
                return Tried(False, error.message, attempt)
            delay = self.delay(attempt, error.retry_after)
            self.retry_at = time.time() + delay
            self.report("retrying", events, first, last, attempt, error.message, delay, letter)
            if self.pause(delay):
                return None

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        d = self.destination
        ceiling = min(d.retry_max_seconds, d.retry_base_seconds * 2.0 ** (attempt - 1))
        return ceiling / 2 + self.jitter() * ceiling / 2  # "equal jitter": never all at once
