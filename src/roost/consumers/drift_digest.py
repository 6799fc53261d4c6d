"""The weekly digest of schema drift: on the first check of each ISO week, every workspace with
somewhere to send notices (its SMTP server and/or webhook) gets what its projects' events
showed for the first time in the week just ended — new events and properties, types changed,
properties past the bound on values, events past the bound on properties — once (the
digest's record is the claim: storage/metadata/notices.py). A week with nothing new sends
nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from roost.consumers.notices import Notifier
from roost.storage.metadata import Metadata
from roost.storage.metadata.schema_seen import SeenStore

CHECK_EVERY_SECONDS = 3600.0
SHOWN = 50  # items a project's part of the email lists (the webhook has them all)

WHAT = {
    "new_event": "new event",
    "new_property": "new property",
    "type_changed": "type changed",
    "many_values": "more distinct values than",
    "many_properties": "more properties than",
    "many_events": "more event names than",
}


def last_week(now: datetime) -> tuple[str, datetime, datetime]:
    """The ISO week before `now`'s: its name and [start, end) in naive UTC."""
    today = now.astimezone(UTC).replace(tzinfo=None)
    end = datetime(today.year, today.month, today.day) - timedelta(days=today.weekday())
    start = end - timedelta(days=7)
    return f"{start:%G-W%V}", start, end


def line(item: dict[str, Any]) -> str:
    where = " · ".join(str(item[k]) for k in ("event", "property") if item[k])
    detail = f" {item['detail']}" if item["detail"] else ""
    return f"  {WHAT.get(item['code'], item['code'])}{detail}: {where or 'the project'}"


def send(metadata: Metadata, seen: SeenStore, notifier: Notifier, now: datetime) -> int:
    """Send last week's digests not sent yet; how many went."""
    week, start, end = last_week(now)
    projects = metadata.list_projects()
    sent = 0
    for workspace in metadata.list_workspaces():
        channels = notifier.store.channels(workspace.id)
        if not channels.smtp_host and not channels.webhook_url:
            continue
        found = {}
        for project in projects:
            if project.workspace_id == workspace.id:
                items = seen.since(project.id, start, end)
                if items:
                    found[project.slug] = items
        if not found:
            continue
        total = sum(len(items) for items in found.values())
        parts = [f"Schema drift in workspace {workspace.name}, week {week} "
                 f"({start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}, UTC):"]  # fmt: skip
        for slug, items in found.items():
            parts.append(f"\nProject {slug}: {len(items)}")
            parts += [line(i) for i in items[:SHOWN]]
            if len(items) > SHOWN:
                parts.append(f"  … and {len(items) - SHOWN} more (GET /api/v1/contracts/drift)")
        payload = {
            "type": "schema_digest", "workspace": workspace.name, "workspace_id": workspace.id,
            "week": week, "from": start.isoformat() + "Z", "to": end.isoformat() + "Z",
            "projects": {slug: [{**i, "first_seen": i["first_seen"].isoformat() + "Z"}
                                for i in items] for slug, items in found.items()},
        }  # fmt: skip
        subject = f"Roost: {total} schema changes in {workspace.name}, week {week}"
        sent += notifier.digest(workspace.id, week, subject, "\n".join(parts), payload)
    return sent
