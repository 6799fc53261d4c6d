"""Erasure: a user's events and profile, or a time range of a project's events, gone from
every store Roost keeps — the Warehouse (deleted), the Log (tombstones, so no replay, rebuild
or forwarder behind brings them back) and the profiles — and the erasure recorded.

First every acknowledged event is made visible (loaded and applied to profiles), so the ids
linked to the user are all known and nothing acknowledged before the request escapes it.
Events already delivered to destinations are not recalled: erase them there too.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from roost.errors import BackendError
from roost.runtime import Runtime
from roost.storage.metadata import Key

CATCH_UP_SECONDS = 30.0


async def _caught_up(runtime: Runtime) -> None:
    if not await runtime.caught_up(timeout=CATCH_UP_SECONDS):
        raise BackendError("the Warehouse is behind the Log; try again shortly")


async def erase_user(runtime: Runtime, key: Key, user_id: str) -> dict[str, Any]:
    await _caught_up(runtime)
    project = key.project_id
    ids = await asyncio.to_thread(runtime.profiles.erase, project, user_id)
    wanted = frozenset(ids)
    events = await asyncio.to_thread(runtime.warehouse.erase, project, ids=ids)
    log_events = await asyncio.to_thread(
        runtime.log.erase,
        project,
        lambda e: e.user_id in wanted or e.anonymous_id in wanted or e.previous_id in wanted,
        ids,
    )
    return await asyncio.to_thread(
        runtime.erasures.record,
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
    runtime: Runtime, key: Key, since: datetime, until: datetime
) -> dict[str, Any]:
    """The project's events with a timestamp in [since, until) (aware datetimes)."""
    await _caught_up(runtime)
    project = key.project_id
    naive = [t.astimezone(UTC).replace(tzinfo=None) for t in (since, until)]
    events = await asyncio.to_thread(
        runtime.warehouse.erase, project, since=naive[0], until=naive[1]
    )
    log_events = await asyncio.to_thread(
        runtime.log.erase, project, lambda e: since <= e.timestamp < until
    )
    return await asyncio.to_thread(
        runtime.erasures.record,
        project,
        key.id,
        user_id=None,
        ids=[],
        since=naive[0],
        until=naive[1],
        events=events,
        log_events=log_events,
    )
