"""The rows the DuckDB Warehouse keeps beside its events so reports count less: presence,
visits and last-seen rows (storage/warehouse/schema.py declares them, query/rollup.py and
query/stats.py say which reports read them; storage/warehouse/duckdb_seen.py keeps the last).

They hold the events up to one Log offset, `rolled` (in ROLLED): the Warehouse rolls the
events loaded since into them every ROLL_EVENTS, when idle, and before a report reads them
(which also reads the events only up to `rolled`, so every part of a report counts the same
events). Each function runs inside the caller's transaction: presence rows are merged an hour
at a time and re-resolved when identity links change; a visit is made again whenever an event
joins it (late ones too) or leaves it (erased), from its visitor's events around it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb
import pyarrow.compute as pc

from roost.storage.warehouse import duckdb_counts as counts
from roost.storage.warehouse import duckdb_errors as errors
from roost.storage.warehouse import duckdb_seen as seen
from roost.storage.warehouse import duckdb_sessions as sessions
from roost.storage.warehouse.duckdb_links import links_of
from roost.storage.warehouse.duckdb_tables import made, shaped
from roost.storage.warehouse.flavor import DuckDBFlavor
from roost.storage.warehouse.schema import (
    PRESENCE_COLUMNS,
    PRESENCE_KEYS,
    VISIT_COLUMNS,
    VISIT_GAP_SECONDS,
    Column,
)

EVENTS = "roost.events"
IDENTITIES = "roost.identities"
PRESENCE = "roost.presence"
VISITS = "roost.visits"
ROLLED = "roost.rollups"  # one row: the Log offset the rollups hold the events up to
_ROLLED = f"(SELECT rolled FROM {ROLLED})"
_ROLLED_COLUMN = Column("rolled", "BIGINT")

_WHO = "coalesce(e.user_id, e.anonymous_id)"
_PRESENCE_VALUES = {
    "timestamp": "date_trunc('hour', e.timestamp)",
    "who": _WHO,
    "events": "count(*)",
}


def _presence_of(links: str | None) -> str:
    """The presence rows of events, … WHERE <which events> GROUP BY: with the identity links
    of the relation `links` (project_id, alias, user_id), or none."""
    values = {**_PRESENCE_VALUES, "linked": "i.user_id" if links else "NULL"}
    joined = (
        f" LEFT JOIN {links} i ON i.project_id = e.project_id AND i.alias = {_WHO}" if links else ""
    )
    return (
        "SELECT "
        + ", ".join(f'{values.get(c.name, f"e.{c.name}")} AS "{c.name}"' for c in PRESENCE_COLUMNS)
        + f" FROM {EVENTS} e{joined}"
    )


_PRESENCE_OF = _presence_of(IDENTITIES)
_PRESENCE_GROUPS = " GROUP BY " + ", ".join(str(n) for n in range(1, len(PRESENCE_KEYS) + 1))
_PRESENCE_KEYS = ", ".join(f'"{c.name}"' for c in PRESENCE_KEYS)

_NOT_BOT = "NOT coalesce(e.bot, 1 = 0)"
_VISITS_OF = DuckDBFlavor(EVENTS, IDENTITIES).visits_of  # the SQL reports make them with too
_GAP = f"INTERVAL {VISIT_GAP_SECONDS} SECOND"


# what `create` may have made: presence and visits, last-seen rows, and each kind of rows
# kept per hour like the presence rows (session hours, counts, error hours: duckdb_hourly.py)
ROWS, SEEN = "rows", "seen"
HOURLY = {"sessions": sessions.HOURLY, "counts": counts.HOURLY, "errors": errors.HOURLY}
# each row a project's
PROJECT_TABLES = (PRESENCE, VISITS, seen.SEEN, *(h.table for h in HOURLY.values()))


def create(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create the tables if any is missing or of another shape (a Roost before this one: they
    are made from the events, so rebuilt rather than altered); which were (ROWS, SEEN: then
    `fill` them, or copy them whole)."""
    shapes = ((PRESENCE, PRESENCE_COLUMNS), (VISITS, VISIT_COLUMNS), (ROLLED, (_ROLLED_COLUMN,)))
    if shaped(con, shapes):
        remade = [SEEN] if seen.create(con, _ROLLED) else []
        return remade + [name for name, h in HOURLY.items() if h.create(con, _ROLLED)]
    _drop_rows(con)
    made(con, shapes)
    seen.make(con)  # made with them, from the same events
    for hourly in HOURLY.values():
        hourly.make(con)
    return [ROWS, SEEN, *HOURLY]


def drop(con: duckdb.DuckDBPyConnection) -> None:
    _drop_rows(con)
    seen.drop(con)
    for hourly in HOURLY.values():
        hourly.drop(con)


def _drop_rows(con: duckdb.DuckDBPyConnection) -> None:
    for table in (PRESENCE, VISITS, ROLLED, "roost.visit_spans"):  # spans: before visits
        con.execute(f"DROP TABLE IF EXISTS {table}")


def rolled(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(f"SELECT rolled FROM {ROLLED}").fetchone()
    return int(row[0]) if row else 0


def presence(project_id: int) -> str:
    """A relation of the project's presence rows, with `person` (and `tally`: query/rollup.py
    says why)."""
    return (
        f"(SELECT *, coalesce(linked, who) AS person, events AS tally FROM {PRESENCE} "
        f"WHERE project_id = {int(project_id)})"
    )


def visits(project_id: int) -> str:
    """A relation of the project's visits."""
    return f"(SELECT * FROM {VISITS} WHERE project_id = {int(project_id)})"


# A condition on events: rolled up, so counted by the rows above (what a report reads of the
# events, so all its parts count the same ones). A parameter, `rolled` read in the report's
# own snapshot: as a subquery it cost DuckDB its top-N plans (the events explorer's newest
# 50 of 10 M events: 5 ms → 1.9 s).
ROLLED_PARAMETER = "roost_rolled"
ROLLED_UP = f"log_offset <= ${ROLLED_PARAMETER}"


def fill(con: duckdb.DuckDBPyConnection, made: Sequence[str]) -> None:
    """Make the new tables' rows (`create` said which) from the events (a database from
    before them): presence and visits from every event, last-seen rows from those rolled up."""
    if ROWS in made:
        _fill_rows(con)
    if SEEN in made:
        seen.fill(con, _ROLLED)
    for name, hourly in HOURLY.items():
        if name in made:
            hourly.fill(con, _ROLLED)


def _fill_rows(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"INSERT INTO {PRESENCE} {_PRESENCE_OF}{_PRESENCE_GROUPS}")
    con.execute(
        f"INSERT INTO {VISITS} "
        + _VISITS_OF(
            f"(SELECT * FROM {EVENTS} e WHERE visitor IS NOT NULL AND {_NOT_BOT})",
            VISIT_GAP_SECONDS,
        )
    )
    con.execute(f"INSERT INTO {ROLLED} SELECT coalesce(max(log_offset), 0) FROM {EVENTS}")


def roll(
    con: duckdb.DuckDBPyConnection, upto: int, links: Mapping[tuple[int, str], str]
) -> list[tuple[datetime, int]]:
    """Roll the events past `rolled` up to the offset `upto` into the rows, `links` being the
    identity links (what IDENTITIES holds); how many presence rows each hour got."""
    new = f"e.log_offset > {_ROLLED} AND e.log_offset <= {int(upto)}"
    with links_of(con, new, links) as linked:
        inserted = con.sql(
            f"INSERT INTO {PRESENCE} {_presence_of(linked)} WHERE {new}{_PRESENCE_GROUPS} "
            "RETURNING timestamp"
        )
        assert inserted is not None  # RETURNING: the rows' hours, as Arrow (no Python per row)
        hours = inserted.to_arrow_table()
    for hourly in HOURLY.values():
        hourly.roll(con, new, upto)
    _touched(con, new)
    _extend(con, new)
    _inside(con, new)
    _revisit(con, str(int(upto)))
    con.execute(f"UPDATE {ROLLED} SET rolled = {int(upto)}")
    counted = pc.value_counts(hours.column(0)).to_pylist()
    return [(c["values"], c["counts"]) for c in counted]


def merge(con: duckdb.DuckDBPyConnection, hours: Sequence[datetime]) -> list[tuple[datetime, int]]:
    """Make the rows of these hours one per group; how many presence rows each has now."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_hours AS SELECT unnest(?::TIMESTAMP[]) AS hour",
        [list(hours)],
    )
    which = "timestamp IN (SELECT hour FROM roost_hours)"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_merged AS "
        f"SELECT {_PRESENCE_KEYS}, sum(events)::BIGINT AS events FROM {PRESENCE} "
        f"WHERE {which}{_PRESENCE_GROUPS}"
    )
    con.execute(f"DELETE FROM {PRESENCE} WHERE {which}")
    con.execute(f"INSERT INTO {PRESENCE} SELECT * FROM roost_merged")
    for hourly in HOURLY.values():
        hourly.merge(con, which)
    return [
        (hour, int(rows))
        for hour, rows in con.execute(
            "SELECT timestamp, count(*) FROM roost_merged GROUP BY 1"
        ).fetchall()
    ]


def relink(con: duckdb.DuckDBPyConnection, links: str, presence: bool = True) -> None:
    """Make the identity links those of the relation `links` (project_id, alias, user_id),
    and (if kept) the presence rows of every id whose link changed follow, and the last-seen
    rows of the people before and after."""
    if presence:  # the ids whose link is new, gone or changed
        con.execute(
            "CREATE OR REPLACE TEMP TABLE roost_relinked AS SELECT project_id, alias FROM "
            f"((SELECT * FROM {IDENTITIES} EXCEPT SELECT * FROM {links}) UNION "
            f"(SELECT * FROM {links} EXCEPT SELECT * FROM {IDENTITIES}))"
        )
        seen.relinking(con, "roost_relinked")
    con.execute(f"DELETE FROM {IDENTITIES}")
    con.execute(f"INSERT INTO {IDENTITIES} SELECT * FROM {links}")
    if not presence:
        return
    con.execute(
        f"UPDATE {PRESENCE} AS p SET linked = l.user_id FROM "
        f"(SELECT r.project_id, r.alias, i.user_id FROM roost_relinked r "
        f"LEFT JOIN {IDENTITIES} i ON i.project_id = r.project_id AND i.alias = r.alias) "
        "AS l WHERE p.project_id = l.project_id AND p.who = l.alias"
    )
    seen.relinked_after(con)
    seen.remake(con)


def erased_hours(con: duckdb.DuckDBPyConnection, condition: str, params: list[object]) -> None:
    """Note the hours, visits and people of the events about to be erased (`condition`
    selects them)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_erased_hours AS SELECT DISTINCT "
        f"date_trunc('hour', timestamp) AS hour FROM {EVENTS} WHERE {condition}",
        params,
    )
    _touched(con, condition, params)
    seen.erasing(con, condition, params)


def remake(con: duckdb.DuckDBPyConnection, project_id: int) -> None:
    """Make the project's rows of the hours, visits and people `erased_hours` noted again
    from the events left (those rolled up)."""
    pid = int(project_id)
    hours = "(SELECT hour FROM roost_erased_hours)"
    con.execute(f"DELETE FROM {PRESENCE} WHERE project_id = {pid} AND timestamp IN {hours}")
    which = (
        f"e.project_id = {pid} AND date_trunc('hour', e.timestamp) IN {hours} "
        f"AND e.log_offset <= {_ROLLED}"  # the events past it are counted as they are
    )
    con.execute(f"INSERT INTO {PRESENCE} {_PRESENCE_OF} WHERE {which}{_PRESENCE_GROUPS}")
    for hourly in HOURLY.values():
        hourly.remake(con, pid, hours, _ROLLED)
    _revisit(con, _ROLLED)
    seen.remake(con)


def _touched(con: duckdb.DuckDBPyConnection, which: str, params: Sequence[object] = ()) -> None:
    """Note each visitor of the events `which` (a condition on `e`) selects, with the first
    and last of their times: the visits these events join or leave lie around them."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_touched AS SELECT e.project_id, e.visitor, "
        f"min(e.timestamp) AS lo, max(e.timestamp) AS hi FROM {EVENTS} e WHERE {which} "
        f"AND e.visitor IS NOT NULL AND {_NOT_BOT} GROUP BY e.project_id, e.visitor",
        list(params),
    )


_VISIT_NAMES = [c.name for c in VISIT_COLUMNS]
_JOINED = {  # a kept visit `k` and the new one `n` that begins within the gap after it
    "ended": "n.ended",
    "events": "k.events + n.events",
    "pageviews": "k.pageviews + n.pageviews",
    "entry_page": "CASE WHEN k.pageviews > 0 THEN k.entry_page ELSE n.entry_page END",
    "exit_page": "CASE WHEN n.pageviews > 0 THEN n.exit_page ELSE k.exit_page END",
}


def _extend(con: duckdb.DuckDBPyConnection, new: str) -> None:
    """Make the visits of the visitors `_touched` noted whose new events (`new`, a condition
    on `e`) all come after every kept visit of theirs — traffic arriving in order, nearly all
    of it — from those events alone, and take those visitors out of the notes.

    Remaking a visit from all its events whenever one joins it cost each roll the whole
    visit: a visitor never silent for 30 minutes made every roll longer than the last (one
    visitor at 90,000 events/s left the Loader ~20 s behind after 10 s). Instead the first
    new visit joins the visitor's last kept one when it begins within the gap after it (the
    two are made one: counts added, the entry page the first one's unless it had no
    pageview, the exit page the last one's), which is what making them from all the events
    gives, as the events of the one all come before those of the other.
    """
    (first,) = con.execute("SELECT min(lo) FROM roost_touched").fetchall()[0]
    if first is None:
        return
    # Only kept visits ending at most a gap before a new event matter (the one to join, or
    # one that makes the visitor's events late): a literal bound, so DuckDB reads only the
    # blocks of recent visits
    recent = f"v.ended >= ?::TIMESTAMP - {_GAP}"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_after AS SELECT t.project_id, t.visitor, t.lo, "
        f"max(v.ended) AS kept FROM roost_touched t LEFT JOIN {VISITS} v "
        f"ON v.project_id = t.project_id AND v.visitor = t.visitor AND {recent} "
        f"AND v.ended >= t.lo - {_GAP} GROUP BY t.project_id, t.visitor, t.lo "
        "HAVING max(v.ended) IS NULL OR max(v.ended) < t.lo",
        [first],
    )
    after, touched = con.execute(
        "SELECT (SELECT count(*) FROM roost_after), (SELECT count(*) FROM roost_touched)"
    ).fetchall()[0]
    if after == 0:
        return
    # all of them, the usual case: no join to find their events among the new ones
    among = (
        ""
        if after == touched
        else ("SEMI JOIN roost_after a ON e.project_id = a.project_id AND e.visitor = a.visitor ")
    )
    events = (
        f"(SELECT e.* FROM {EVENTS} e {among}WHERE {new} AND e.visitor IS NOT NULL AND {_NOT_BOT})"
    )
    made = _VISITS_OF(events, VISIT_GAP_SECONDS, read_twice=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE roost_fresh AS {made}")
    joined = ", ".join(f'{_JOINED.get(name, f"k.{name}")} AS "{name}"' for name in _VISIT_NAMES)
    con.execute(  # the new visit starting at `lo` and the kept one ending at `kept`
        f"CREATE OR REPLACE TEMP TABLE roost_joined AS SELECT {joined}, n.timestamp AS joined "
        f"FROM roost_after a JOIN {VISITS} k ON k.project_id = a.project_id "
        f"AND k.visitor = a.visitor AND k.ended = a.kept AND {recent.replace('v.', 'k.')} "
        "JOIN roost_fresh n ON n.project_id = a.project_id AND n.visitor = a.visitor "
        "AND n.timestamp = a.lo "
        f"WHERE epoch_us(n.timestamp) - epoch_us(k.ended) <= {VISIT_GAP_SECONDS * 1_000_000}",
        [first],
    )
    con.execute(
        f"DELETE FROM {VISITS} v USING roost_joined j WHERE v.project_id = j.project_id "
        f"AND v.visitor = j.visitor AND v.timestamp = j.timestamp AND {recent}",
        [first],
    )
    names = ", ".join(f'"{name}"' for name in _VISIT_NAMES)
    con.execute(f"INSERT INTO {VISITS} SELECT {names} FROM roost_joined")
    con.execute(
        f"INSERT INTO {VISITS} SELECT f.* FROM roost_fresh f ANTI JOIN roost_joined j "
        "ON f.project_id = j.project_id AND f.visitor = j.visitor AND f.timestamp = j.joined"
    )
    con.execute(
        "DELETE FROM roost_touched t USING roost_after a "
        "WHERE t.project_id = a.project_id AND t.visitor = a.visitor"
    )


def _inside(con: duckdb.DuckDBPyConnection, new: str) -> None:
    """Make the visits of the visitors `_touched` still notes whose new events (`new`) are
    late but change no kept visit's start or pages — a server's events, one never-silent
    visitor whose callers' times come a few ms out of order — from those events alone, and
    take those visitors out of the notes.

    Remaking such a visitor's one visit from all its events on every roll made each roll
    cost more than the last (bench/RESULTS.md, 2026-12-08: the Loader, and ingest with it,
    down from ~37,000 to ~22,000 events/s within a minute). It is exact when one kept visit
    `k` alone is within the gap of the new events (so none bridges two), every new event is
    after its start (its first event, and what a visit takes from it, stay), and no new
    pageview is at or before its end (its entry and exit pages stay). The new events' own
    visits that begin within the gap after `k` ends then join it: each adds its counts, and
    the last — the one that may outlast `k`, and the only one that may hold pageviews — gives
    the end, and the exit page if it has a pageview (the entry page too if `k` had none).
    """
    (first,) = con.execute("SELECT min(lo) FROM roost_touched").fetchall()[0]
    if first is None:
        return
    near = f"v.ended >= ?::TIMESTAMP - {_GAP}"  # a literal bound, as in _extend
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_inside AS SELECT t.project_id, t.visitor, "
        "any_value(v.timestamp) AS started, any_value(v.ended) AS kept FROM roost_touched t "
        f"JOIN {VISITS} v ON v.project_id = t.project_id AND v.visitor = t.visitor AND {near} "
        f"AND v.ended >= t.lo - {_GAP} AND v.timestamp <= t.hi + {_GAP} "
        "GROUP BY t.project_id, t.visitor, t.lo HAVING count(*) = 1 AND any_value(v.timestamp) < t.lo",
        [first],
    )
    con.execute(  # a new pageview at or before the kept visit's end: its pages may change
        "DELETE FROM roost_inside i USING (SELECT DISTINCT e.project_id, e.visitor "
        f"FROM {EVENTS} e JOIN roost_inside i ON e.project_id = i.project_id "
        f"AND e.visitor = i.visitor WHERE {new} AND e.type = 'page' AND e.timestamp <= i.kept) "
        "AS p WHERE i.project_id = p.project_id AND i.visitor = p.visitor"
    )
    (inside,) = con.execute("SELECT count(*) FROM roost_inside").fetchall()[0]
    if inside == 0:
        return
    events = (
        f"(SELECT e.* FROM {EVENTS} e SEMI JOIN roost_inside i ON e.project_id = i.project_id "
        f"AND e.visitor = i.visitor WHERE {new} AND e.visitor IS NOT NULL AND {_NOT_BOT})"
    )
    made = _VISITS_OF(events, VISIT_GAP_SECONDS, read_twice=True)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_fresh AS SELECT n.*, (epoch_us(n.timestamp) - "
        f"epoch_us(i.kept) <= {VISIT_GAP_SECONDS * 1_000_000}) AS joins FROM ({made}) n "
        "JOIN roost_inside i ON n.project_id = i.project_id AND n.visitor = i.visitor"
    )
    con.execute(  # what the joining visits add, and the last of them
        "CREATE OR REPLACE TEMP TABLE roost_added AS SELECT project_id, visitor, "
        "sum(events) AS events, sum(pageviews) AS pageviews, max(ended) AS ended, "
        "arg_max(pageviews, ended) AS last_pageviews, arg_max_null(entry_page, ended) AS entry_page, "
        "arg_max_null(exit_page, ended) AS exit_page FROM roost_fresh WHERE joins "
        "GROUP BY project_id, visitor"
    )
    joined = {
        "ended": "greatest(k.ended, n.ended)",
        "events": "k.events + n.events",
        "pageviews": "k.pageviews + n.pageviews",
        "entry_page": "CASE WHEN k.pageviews > 0 THEN k.entry_page ELSE n.entry_page END",
        "exit_page": "CASE WHEN n.last_pageviews > 0 THEN n.exit_page ELSE k.exit_page END",
    }
    columns = ", ".join(f'{joined.get(name, f"k.{name}")} AS "{name}"' for name in _VISIT_NAMES)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE roost_joined AS SELECT {columns} FROM roost_inside i "
        f"JOIN {VISITS} k ON k.project_id = i.project_id AND k.visitor = i.visitor "
        f"AND k.timestamp = i.started AND {near.replace('v.', 'k.')} "
        "JOIN roost_added n ON n.project_id = i.project_id AND n.visitor = i.visitor",
        [first],
    )
    con.execute(
        f"DELETE FROM {VISITS} v USING roost_joined j WHERE v.project_id = j.project_id "
        f"AND v.visitor = j.visitor AND v.timestamp = j.timestamp AND {near}",
        [first],
    )
    names = ", ".join(f'"{name}"' for name in _VISIT_NAMES)
    con.execute(f"INSERT INTO {VISITS} SELECT {names} FROM roost_joined")
    con.execute(f"INSERT INTO {VISITS} SELECT {names} FROM roost_fresh WHERE NOT joins")
    con.execute(
        "DELETE FROM roost_touched t USING roost_inside i "
        "WHERE t.project_id = i.project_id AND t.visitor = i.visitor"
    )


def _revisit(con: duckdb.DuckDBPyConnection, upto: str) -> None:
    """Make the visits of each visitor `_touched` noted again, from their events up to the
    offset `upto` (SQL) between the first and last moments any of those visits may span.

    A kept visit that ends within the gap before a noted visitor's first time, or begins within
    it after the last, may change: it goes, and the hull of its times and the noted ones is
    made again. No other kept visit lies inside that hull (kept visits are more than the gap
    apart) or is within the gap of it, so the visits made from the hull's events are whole.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_hull AS SELECT t.project_id, t.visitor, "
        "least(t.lo, min(v.timestamp)) AS lo, greatest(t.hi, max(v.ended)) AS hi "
        f"FROM roost_touched t LEFT JOIN {VISITS} v ON v.project_id = t.project_id "
        f"AND v.visitor = t.visitor AND v.ended >= t.lo - {_GAP} AND v.timestamp <= t.hi + {_GAP} "
        "GROUP BY t.project_id, t.visitor, t.lo, t.hi"
    )
    first, last = con.execute("SELECT min(lo), max(hi) FROM roost_hull").fetchall()[0]
    if first is None:
        return
    con.execute(
        f"DELETE FROM {VISITS} v USING roost_hull h WHERE v.project_id = h.project_id "
        "AND v.visitor = h.visitor AND v.ended >= h.lo AND v.timestamp <= h.hi"
    )
    # the hull's bounds as literals too: DuckDB skips the blocks of events outside them
    events = (
        f"(SELECT e.* FROM {EVENTS} e JOIN roost_hull h ON e.project_id = h.project_id "
        "AND e.visitor = h.visitor AND e.timestamp BETWEEN h.lo AND h.hi "
        f"WHERE e.timestamp BETWEEN ? AND ? AND e.log_offset <= {upto} AND {_NOT_BOT})"
    )
    con.execute(f"INSERT INTO {VISITS} {_VISITS_OF(events, VISIT_GAP_SECONDS)}", [first, last])
