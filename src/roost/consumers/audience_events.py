"""`Audience Entered` and `Audience Exited`: each change of membership, written to an outbox in
the same transaction as the change (storage/metadata/audiences.py), becomes a track event in
the Log here — so the Warehouse has it and every destination gets it as it gets any event,
exactly once, as Segment's audiences send them.

The drain runs on the server's event loop (the Log is appended to there). An event's messageId
is made from the membership (project, audience, person, when it began, entry or exit): if the
server stops between the append and the outbox row's removal, the next drain finds the id in
the dedup index (loaded from the Warehouse after the Loader caught up with the Log) and does
not append it again; on a cluster, JetStream drops a second append of the same ids too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from roost.errors import BackendError
from roost.model import Event
from roost.pipeline.dedup import DedupIndex
from roost.storage.log import Log
from roost.storage.metadata.audiences import AudienceStore

log = logging.getLogger("roost")
BATCH = 500
IDLE_SECONDS = 5.0  # how often the outbox is looked at when nothing said it changed


class Stores(Protocol):
    log: Log
    audience_store: AudienceStore
    dedup: DedupIndex


def key_of(name: str) -> str:
    """Segment's audience key: the name in snake case (`Power buyers` → `power_buyers`)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "audience"


def message_id(row: Any) -> str:
    kind = "exited" if row.exited_at is not None else "entered"
    text = f"{row.project_id}\n{row.audience}\n{row.person}\n{row.entered_at.isoformat()}\n{kind}"
    return "aud_" + hashlib.sha256(text.encode()).hexdigest()[:40]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def event_of(row: Any, now: datetime) -> Event:
    entered = row.exited_at is None
    key = key_of(row.audience)
    at = _utc(row.entered_at if entered else row.exited_at)
    assert at is not None
    properties: dict[str, Any] = {
        "audience_key": key, "audience_name": row.audience, key: entered,
        "entered_at": row.entered_at.replace(tzinfo=UTC).isoformat(),
    }  # fmt: skip
    if not entered:
        properties["exited_at"] = at.isoformat()
    return Event(
        message_id=message_id(row),
        project_id=row.project_id,
        dialect="audience",
        type="track",
        event="Audience Entered" if entered else "Audience Exited",
        user_id=row.person,
        timestamp=at,
        received_at=now,
        properties=properties,
        context={"personas": {"computation_class": "audience", "computation_key": key}},
    )


async def drain(stores: Stores, limit: int = BATCH) -> int:
    """Append what the outbox holds to the Log (in order), then forget it; how many."""
    rows: Sequence[Any] = await asyncio.to_thread(stores.audience_store.waiting, limit)
    if not rows:
        return 0
    now = datetime.now(UTC)
    clock = time.time()
    fresh = []
    for row in rows:
        event = event_of(row, now)
        if stores.dedup.reserve(event.project_id, event.message_id, clock):
            fresh.append(event)
    try:
        if fresh:
            await stores.log.append(fresh)
    except BackendError:
        stores.dedup.release((e.project_id, e.message_id) for e in fresh)
        raise
    await asyncio.to_thread(stores.audience_store.announced, [row.id for row in rows])
    return len(rows)


async def run(stores: Stores, wake: asyncio.Event) -> None:
    """Drain the outbox for as long as the server runs: when woken (the audiences consumer
    wrote to it), or every IDLE_SECONDS (another node's consumer may have)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), IDLE_SECONDS)
        wake.clear()
        try:
            while await drain(stores) == BATCH:
                pass
        except BackendError as exc:
            log.warning("audience events wait: %s", exc.message)
            await asyncio.sleep(1.0)
        except Exception:
            log.exception("audience events failed; retrying")
            await asyncio.sleep(1.0)
