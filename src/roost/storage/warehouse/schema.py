"""The events table, declared once for every backend.

Each column names its type per engine; `Event`'s fields are the same columns in the same
order (checked below), so the JSON the Log stores parses straight into these columns. JSON
columns hold properties, traits, context and integrations whole.
"""

from __future__ import annotations

from typing import NamedTuple

from roost.dialects.game import GAME_TYPES
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
    _text("category"),  # a game event's (session, progression, …): who played
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

# How many events of each hour had each type, name, page and where and on what: the presence
# rows without whom (a tally, tens of thousands of rows where the presence rows are millions),
# so the events and pageviews of a range are a sum of a few rows (pageviews per month at 10 M
# events: 4 M presence rows, ~50 ms).
COUNT_KEYS: tuple[Column, ...] = (
    *(c for c in PRESENCE_KEYS if c.name not in ("who", "linked", "visitor", "session_id")),
    _text("event"),
    _text("path"),
)
COUNT_COLUMNS: tuple[Column, ...] = (
    *COUNT_KEYS,
    Column("events", "BIGINT"),
    Column("moved", "DOUBLE"),  # the sum of their positive values (NULL: none; resource flows)
)


# How many error events of each hour had each signature (what the errors report groups by:
# SEEN_DIMENSIONS["error"]), name and build, and the first and last of their times: the
# errors report sums a few rows an hour instead of reading every event's category (at 100 M
# events ~1 s).
ERROR_KEYS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _time("timestamp"),  # the start of the hour
    _text("signature"),
    _text("event"),
    _text("build"),
)
ERROR_COLUMNS: tuple[Column, ...] = (
    *ERROR_KEYS,
    Column("events", "BIGINT"),
    _time("first"),
    _time("last"),
)

# Each visit: a visitor's events with no gap over 30 minutes between two of them (bots' events
# and events without a visitor are no visit). It counts in the time range and bucket it began
# in, and carries what it began with — where it came from, on which page, from where in the
# world and on what — so visits, bounces, durations and entry/exit pages are aggregations of
# these rows, and a visit is attributed to its entry once, not split by what each event says.
VISIT_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _text("visitor"),
    _time("timestamp"),  # its first event's: reports bound and bucket visits by their start
    _time("ended"),  # its last event's
    Column("events", "BIGINT"),
    Column("pageviews", "BIGINT"),
    _text("entry_page"),  # the path of its first pageview (NULL: none)
    _text("exit_page"),  # of its last
    *(_text(name) for name in ("host", "source", "referrer", "utm_source", "utm_medium",
                               "utm_campaign", "utm_term", "utm_content", "country", "browser",
                               "os", "device")),  # its first event's
)  # fmt: skip
ENTERED = tuple(c.name for c in VISIT_COLUMNS[8:])  # what a visit takes from its first event
VISIT_GAP_SECONDS = 30 * 60  # a visit ends after 30 minutes without an event


# Each game session's events of each hour (the sessions report's per-session values: when it
# started and ended by its Session:Start and Session:End events, its first and last events,
# how many, its build and dimensions — all minima, maxima or counts, so a range of whole
# hours is the rows of its hours merged per session). A game session is a session id of
# events that carry a build (a web or Segment session has none).
SESSION_HOUR_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _time("timestamp"),  # the start of the hour
    _text("session_id"),
    _time("started"),  # its first Session:Start's time (NULL: none in the hour)
    _time("ended"),  # its last Session:End's
    _time("first_seen"),
    _time("last_seen"),
    Column("events", "BIGINT"),
    _text("build"),  # the least of its events' (as are the dimensions)
    _text("dim1"),
    _text("dim2"),
    _text("dim3"),
)
SESSION_MERGE = {  # how each value column of session hours merges (per session, of some hours)
    "started": "min",
    "ended": "max",
    "first_seen": "min",
    "last_seen": "max",
    "events": "sum",
    **dict.fromkeys(("build", "dim1", "dim2", "dim3"), "min"),
}
SESSION_MERGED = {  # as SQL aggregates
    name: f"CAST(sum({name}) AS BIGINT)" if how == "sum" else f"{how}({name})"
    for name, how in SESSION_MERGE.items()
}
# Each game session's hours merged into one row, with its first and last hour: a range of
# whole hours holds the sessions whose hours all lie in it as their rows are, and only those
# it cuts need their hours merged (GROUP BY session over 5.6 M session hours at 100 M events:
# 3.6–7.6 s a report)
SESSION_ROW_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _text("session_id"),
    _time("first_hour"),
    _time("last_hour"),
    *SESSION_HOUR_COLUMNS[3:],
)


# When each person was last seen: per person (identity links resolved), the time of their last
# (and first, and how many) event of each name (`dimension` 'event', `value` the name), of
# each run and resource of a game ('run', 'resource': the game reports' players), of any
# game event ('player') and of any event (`dimension` '', `value` NULL); likewise per visitor (`person` the visitor; bots' events left out), of any
# event ('visitor'), of each page viewed ('visitor pageview', `value` the path) and of the
# country, browser, OS and device of their pageviews (the dashboard's web panels). The people
# of a time range that ends after their last time are those whose last time lies in it — a
# count of rows, where counting them from the events is a distinct count over every event
# (query/rollup.py says which reports read it). Their first times and counts answer for all
# time without a grouping of the events: who is new, each person's events, retention cohorts.
SEEN_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "INTEGER"),
    _text("dimension"),
    _text("value"),
    _text("person"),
    _time("first"),
    _time("last"),
    Column("events", "BIGINT"),
)


class Seen(NamedTuple):
    """What the last-seen rows of one `dimension` hold."""

    metric: str  # whom they count: the Stats API's users, visitors or sessions
    column: str | None  # the column `value` is (None: a row a person, of any event)
    # (column, value or values): of the events that have it (one of them) only
    only: tuple[str, str | tuple[str, ...]] | None = None
    after: str | None = None  # `value`: the column's text after this (events without it: none)
    positive: str | None = None  # a column: of the events where it is above 0 only
    prop: str | None = None  # `value`: this member of `properties` where set, else the column's


SEEN_DIMENSIONS = {
    "": Seen("users", None),
    "event": Seen("users", "event"),
    "visitor": Seen("visitors", None),
    "visitor pageview": Seen("visitors", "path", ("type", "page")),
    **{f"visitor pageview {c}": Seen("visitors", c, ("type", "page"))
       for c in ("country", "browser", "os", "device")},
    # players per run and per resource (the game reports': a progression or resource event's
    # name is `verb:subject`), a resource's of the events that moved some of it
    "run": Seen("users", "event", ("category", "progression"), ":"),
    "resource": Seen("users", "event", ("category", "resource"), ":", "value"),
    # players per error signature (the errors report's: `data.signature`, else the name)
    "error": Seen("users", "event", ("category", "error"), prop="signature"),
    # players: who had a game event (the players report's, new ones by their first)
    "player": Seen("users", None, ("category", GAME_TYPES)),
    # per session (`person` the session id: no identity links), of any event
    "session": Seen("sessions", None),
}  # fmt: skip
