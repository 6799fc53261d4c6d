"""The events table, declared once for every backend.

Each column names its type per engine; `Event`'s fields are the same columns in the same
order (checked below), so the JSON the Log stores parses straight into these columns. JSON
columns hold properties, traits, context and integrations whole.
"""

from __future__ import annotations

from typing import NamedTuple

from roost.model import STORED_FIELDS


class Column(NamedTuple):
    name: str
    duckdb: str
    json: bool = False


def _text(name: str) -> Column:
    return Column(name, "VARCHAR")


def _time(name: str) -> Column:
    return Column(name, "TIMESTAMP")


def _json(name: str) -> Column:
    return Column(name, "JSON", json=True)


EVENT_COLUMNS: tuple[Column, ...] = (
    _text("message_id"),
    Column("project_id", "INTEGER"),
    _text("dialect"),
    _text("type"),
    _text("event"),
    _text("user_id"),
    _text("anonymous_id"),
    _text("group_id"),
    _text("previous_id"),
    _text("session_id"),
    _time("timestamp"),
    _time("original_timestamp"),
    _time("sent_at"),
    _time("received_at"),
    _text("category"),
    Column("value", "DOUBLE"),
    _text("dim1"),
    _text("dim2"),
    _text("dim3"),
    _text("url"),
    _text("host"),
    _text("path"),
    _text("referrer"),
    _text("source"),
    _text("utm_source"),
    _text("utm_medium"),
    _text("utm_campaign"),
    _text("utm_term"),
    _text("utm_content"),
    _text("country"),
    _text("browser"),
    _text("os"),
    _text("device"),
    Column("bot", "BOOLEAN"),
    _text("visitor"),
    _text("build"),
    _json("properties"),
    _json("traits"),
    _json("context"),
    _json("integrations"),
)

OFFSET_COLUMN = Column("log_offset", "BIGINT")
ALL_COLUMNS: tuple[Column, ...] = (OFFSET_COLUMN, *EVENT_COLUMNS)

if tuple(c.name for c in EVENT_COLUMNS) != STORED_FIELDS:  # pragma: no cover - import-time check
    raise RuntimeError("storage/warehouse/schema.py and model.Event disagree on the event columns")


# Who was there in each hour: the events grouped by the UTC hour they happened in and by what
# the Stats API counts people with or splits them by (the Loader keeps it beside the events,
# query/rollup.py says which reports read it). `who` is the id an event carries (its user id,
# else its anonymous id) and `linked` the user id an identity link makes it (NULL when none:
# the person is then `who`, stored once); `events` how many of the group's events the row
# counts (a group may have several rows until they are merged).
PRESENCE_KEYS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _time("timestamp"),  # the start of the hour, so reports bucket and bound it like events
    _text("type"),
    _text("who"),
    _text("linked"),
    _text("visitor"),
    _text("session_id"),
    Column("bot", "BOOLEAN"),
    _text("country"),
    _text("browser"),
    _text("os"),
    _text("device"),
)
PRESENCE_COLUMNS: tuple[Column, ...] = (*PRESENCE_KEYS, Column("events", "BIGINT"))


# Each visitor's runs of events within an hour with no gap over 30 minutes (a visit, or the
# part of one in that hour): what visits, bounces and their durations are counted from. Bots'
# events and events without a visitor are not visits, so have none.
SPAN_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _time("timestamp"),  # the start of the hour
    _text("visitor"),
    _time("began"),  # its first event's timestamp
    _time("ended"),  # its last's
    Column("events", "BIGINT"),
)
VISIT_GAP_SECONDS = 30 * 60  # a visit ends after 30 minutes without an event
