"""Erasure: a user's events and profile, or a time range of a project's events, gone from
every store Roost keeps — the Warehouse (deleted), the Log (tombstones, so no replay, rebuild
or forwarder behind brings them back), the profiles and the dead letters — and the erasure
recorded. Then the Scrubber takes what was erased off disk: the stores free the space an
erased value held but leave its bytes there, so each rewrites or empties the files that
still hold them, and the record says when (`on_disk_at`).

First every acknowledged event is made visible (loaded and applied to profiles), so the ids
linked to the user are all known and nothing acknowledged before the request escapes it.
Events already delivered to destinations are not recalled: erase them there too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.consumers.profiles import ProfilesConsumer
from roost.errors import BackendError
from roost.model import Event, Key
from roost.storage.log import Log
from roost.storage.metadata.audiences import AudienceStore
from roost.storage.metadata.destinations import DestinationStore
from roost.storage.metadata.erasures import ErasureStore
from roost.storage.metadata.quarantine import QuarantineStore
from roost.storage.warehouse import Warehouse
from roost.storage.warehouse.flavor import RANGES_PER_STATEMENT

log = logging.getLogger("roost")

CATCH_UP_SECONDS = 30.0
RETRY_SECONDS = 10.0  # a scrub that could not finish (readers, ClickHouse parts) tries again


class Stores(Protocol):
    """What an erasure reaches: every store that may hold the user's data (the Runtime)."""

    log: Log
    warehouse: Warehouse
    profiles: ProfilesConsumer
    audience_store: AudienceStore
    quarantine: QuarantineStore
    destinations: DestinationStore
    erasures: ErasureStore
    scrubber: Scrubber

    async def caught_up(self, timeout: float = 1.0) -> bool: ...


async def _caught_up(runtime: Stores) -> None:
    if not await runtime.caught_up(timeout=CATCH_UP_SECONDS):
        raise BackendError("the Warehouse is behind the Log; try again shortly")


async def erase_user(runtime: Stores, key: Key, user_id: str) -> dict[str, Any]:
    await _caught_up(runtime)
    project = key.project_id
    ids = await asyncio.to_thread(runtime.profiles.erase, project, user_id)
    await asyncio.to_thread(runtime.audience_store.erase, project, ids)  # counts, memberships
    await asyncio.to_thread(runtime.quarantine.erase, project, ids)  # events blocked, held
    wanted = frozenset(ids)
    events = await asyncio.to_thread(runtime.warehouse.erase, project, ids=ids)
    log_events = await _erase_logged(
        runtime,
        project,
        lambda e: e.user_id in wanted or e.anonymous_id in wanted or e.previous_id in wanted,
        ids,
    )
    return await _recorded(
        runtime,
        project,
        key.id,
        user_id=user_id,
        ids=ids,
        since=None,
        until=None,
        events=events,
        log_events=log_events,
    )


async def erase_range(
    runtime: Stores, key: Key, since: datetime, until: datetime
) -> dict[str, Any]:
    """The project's events with a timestamp in [since, until) (aware datetimes)."""
    await _caught_up(runtime)
    project = key.project_id
    naive = [t.astimezone(UTC).replace(tzinfo=None) for t in (since, until)]
    events = await asyncio.to_thread(
        runtime.warehouse.erase, project, since=naive[0], until=naive[1]
    )
    await asyncio.to_thread(runtime.quarantine.erase, project, since=naive[0], until=naive[1])
    log_events = await _erase_logged(runtime, project, lambda e: since <= e.timestamp < until)
    return await _recorded(
        runtime,
        project,
        key.id,
        user_id=None,
        ids=[],
        since=naive[0],
        until=naive[1],
        events=events,
        log_events=log_events,
    )


async def _erase_logged(
    runtime: Stores, project: int, matches: Callable[[Event], bool], hints: Sequence[str] = ()
) -> int:
    """Out of the Log, and the same events out of the dead letters; how many.

    A Log that stored a group's other events again at new offsets (JetStream) leaves them in
    the Warehouse twice once loaded: their old rows go when the Loader has the new ones.
    """
    erased = await asyncio.to_thread(runtime.log.erase, project, matches, hints)
    await asyncio.to_thread(runtime.destinations.erase_letters, project, erased.message_ids)
    if erased.replaced:
        await _caught_up(runtime)
        replaced, step = erased.replaced, RANGES_PER_STATEMENT  # a busy user: many messages
        for at in range(0, len(replaced), step):
            await asyncio.to_thread(
                runtime.warehouse.erase, project, offsets=replaced[at : at + step]
            )
    return len(erased.message_ids)


async def _recorded(runtime: Stores, *args: Any, **kwargs: Any) -> dict[str, Any]:
    done = await asyncio.to_thread(runtime.erasures.record, *args, **kwargs)
    runtime.scrubber.wake()
    return done


class Scrubber:
    """Takes erased values off disk, in a thread of its own: after every erasure, and again
    every RETRY_SECONDS until every store says it is done (so erasures recorded before a
    crash are finished after it); then each erasure's `on_disk_at` is set. Any node may run
    one: scrubbing twice does no harm."""

    def __init__(
        self, log_: Log, warehouse: Warehouse, metadata: Engine, erasures: ErasureStore
    ) -> None:
        self.log, self.warehouse, self.metadata, self.erasures = log_, warehouse, metadata, erasures
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="roost-scrubber", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping:
            try:
                self.run_once()
            except Exception:
                log.exception("scrubbing erased data failed; it will be tried again")
            self._wake.wait(RETRY_SECONDS)
            self._wake.clear()

    def run_once(self) -> bool:
        """Scrub what the erasures waiting need; whether they are all on disk now."""
        ids, erased_at = self.erasures.waiting()
        if not ids or erased_at is None:
            return True
        done = self.log.scrub() and self.warehouse.scrub(erased_at) and self._metadata()
        if done:
            self.erasures.on_disk(ids)
            log.info("erasures scrubbed from disk", extra={"erasures": ids})
        return done

    def _metadata(self) -> bool:
        """SQLite zeroes what it deletes (secure_delete); the WAL still holds the old pages
        until it is emptied. PostgreSQL's own files are its own: VACUUM reclaims them."""
        if self.metadata.dialect.name != "sqlite":
            return True
        with self.metadata.connect() as conn:
            row = conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
        return row is not None and row[0] == 0
