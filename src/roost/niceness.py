"""Lower a thread's priority, so queries yield the CPU to ingest."""

from __future__ import annotations

import contextlib
import os
import threading


def lower_priority(nice: int) -> None:
    """This thread only (Linux nices threads one by one), and the threads it starts after."""
    if nice > 0:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
