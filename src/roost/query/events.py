"""Single events rather than aggregates: the explorer's newest-first list, one event whole, a
person's timeline and the count of the last minutes — for the dashboard, in any flavor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roost.model import NAMED_TYPES
from roost.storage.warehouse.flavor import RANGES_PER_STATEMENT, Flavor, in_ranges

LISTED = ("timestamp", "type", "event", "user_id", "anonymous_id", "path", "country", "message_id")
EVENT_TYPES_SHOWN = ("track", "page", "screen", "identify", "group", "alias", "game")


@dataclass(frozen=True)
class Search:
    """What the explorer filters on; empty fields do not filter."""

    event: str = ""
    type: str = ""
    user: str = ""
    before: datetime | None = None  # the page after: events older than the last one shown
    destination: str = ""  # with `status`: the events a destination is waiting to send, or
    status: str = ""  # set aside as dead letters (DESTINATION_STATUSES)


DESTINATION_STATUSES = ("waiting", "dead_lettered")


def at_destination(
    status: str, flavor: Flavor, after_offset: int, letters: Sequence[tuple[int, int]],
    types: Sequence[str] | None, events: Sequence[str] | None,
) -> str:  # fmt: skip
    """The condition for a destination's events in a status: its dead letters' offsets, or
    past its cursor and within its type and event rules (its consent and `integrations`
    rules are not SQL: a waiting list may hold events they will leave out)."""
    if status == "dead_lettered":
        return in_ranges("log_offset", letters[-RANGES_PER_STATEMENT:])
    tests = [f"log_offset > {int(after_offset)}"]
    if types is not None:
        tests.append(f"type IN ({', '.join(flavor.string(t) for t in types) or 'NULL'})")
    if events is not None:
        named = ", ".join(flavor.string(e) for e in events) or "NULL"
        calls = ", ".join(flavor.string(t) for t in NAMED_TYPES)
        tests.append(f"(type NOT IN ({calls}) OR event IN ({named}))")
    return "(" + " AND ".join(tests) + ")"


def listing(
    search: Search, project_id: int, flavor: Flavor, limit: int, also: str | None = None
) -> str:
    where = ["1 = 1", *([also] if also else [])]  # ClickHouse 18 has no TRUE
    if search.event:
        where.append(f"event = {flavor.string(search.event)}")
    if search.type:
        where.append(f"type = {flavor.string(search.type)}")
    if search.user:
        who = flavor.string(search.user)
        where.append(f"(user_id = {who} OR anonymous_id = {who})")
    if search.before is not None:
        where.append(f"timestamp < {flavor.timestamp(search.before)}")
    return (
        f"SELECT {', '.join(LISTED)} FROM {flavor.rows(project_id)} AS e "
        f"WHERE {' AND '.join(where)} ORDER BY timestamp DESC, log_offset DESC LIMIT {int(limit)}"
    )


def one(message_id: str, project_id: int, flavor: Flavor) -> str:
    return (
        f"SELECT * FROM {flavor.rows(project_id)} AS e "
        f"WHERE message_id = {flavor.string(message_id)} LIMIT 1"
    )


def timeline(ids: Sequence[str], project_id: int, flavor: Flavor, limit: int) -> str:
    """A person's newest events, under any of their ids (user id, linked anonymous ids)."""
    listed = ", ".join(flavor.string(i) for i in ids) or "NULL"
    return (
        f"SELECT {', '.join(LISTED)} FROM {flavor.rows(project_id)} AS e "
        f"WHERE user_id IN ({listed}) OR anonymous_id IN ({listed}) "
        f"ORDER BY timestamp DESC, log_offset DESC LIMIT {int(limit)}"
    )


def recent(since: datetime, until: datetime, project_id: int, flavor: Flavor) -> str:
    """Events that happened in [since, until] and the people behind them: the live counter.

    By the events' own time, not their arrival: a backfill or an offline device's batch
    arriving now did not happen in the last five minutes."""
    return (
        "SELECT count(*) AS events, count(DISTINCT coalesce(user_id, anonymous_id)) AS people "
        f"FROM {flavor.rows(project_id)} AS e WHERE timestamp >= {flavor.timestamp(since)} "
        f"AND timestamp <= {flavor.timestamp(until)}"
    )


def as_dicts(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]
