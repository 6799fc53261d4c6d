"""The DuckDB Warehouse's last-seen rows (storage/warehouse/schema.py's SEEN_COLUMNS), kept with
the presence rows and visits (storage/warehouse/duckdb_rollups.py, whose transactions these
functions run in): the new events' first and last times and counts are merged in — by the
Loader every MERGE_EVENTS events, by a report all that is left (a late event leaves a later
time as it is); a change of identity links makes the rows of each person it touches follow,
and an erasure makes those of each person, visitor and session of its events again from the
events up to the rows' own offset (and the session rows of duckdb_sessions.py with them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import duckdb

from roost.storage.warehouse import duckdb_sessions as sessions
from roost.storage.warehouse.duckdb_links import links_of
from roost.storage.warehouse.duckdb_tables import dropped, made, remade
from roost.storage.warehouse.flavor import DuckDBFlavor
from roost.storage.warehouse.schema import SEEN_COLUMNS, SEEN_DIMENSIONS, Column, Seen

EVENTS = "roost.events"
IDENTITIES = "roost.identities"
SEEN = "roost.seen"
# The rows are kept in the order of `dimension`, then `person` (ORDER), so DuckDB finds a few
# people's rows (a roll's merge, a relink's) by the row groups' ranges instead of reading every
# row (~4 ms for a roll of a few events against ~70 ms at 6.6 M rows), and a report the rows of
# its dimension (at 10 M events, 12.5 M rows: users per event name 55–65 → 16–20 ms, all the
# users 16 → 1–4 ms; in the order of `person` alone each read every row's `dimension`). Rolls
# add new rows at the end: once those are past UNSORTED_SHARE of the rest, and UNSORTED_MIN,
# the rows are put in order again (`tidy`, when the Loader is idle).
ORDER = "dimension, person"
# One row: the rollups' offset (duckdb_rollups.ROLLED) the rows hold the events up to — the
# same unless a Roost from before them rolled events up meanwhile — how many of the rows, the
# first, are in order, and what they are kept per and in (SEEN_DIMENSIONS, ORDER): the rows
# are made again when either of those is not this Roost's
HELD = "roost.seen_held"
_HELD_COLUMNS = (Column("held", "BIGINT"), Column("sorted", "BIGINT"), Column("kept", "VARCHAR"))
# the session rows (duckdb_sessions.py) are kept with them, at their offset
_TABLES = ((SEEN, SEEN_COLUMNS), sessions.ROW_TABLE, (HELD, _HELD_COLUMNS))
KEPT = json.dumps([SEEN_DIMENSIONS, ORDER], sort_keys=True)
UNSORTED_MIN = 200_000
UNSORTED_SHARE = 0.25
MERGE_EVENTS = 200_000  # events the Loader rolls up before it merges them in (`roll`)
PEOPLE = "roost_seen_people"  # a temporary table: (project_id, person) whose rows are made again
RELINKED = "roost_seen_relinked"  # a temporary table: the ids whose link changes (`relinking`)
_MOVED = "was IS NULL AND now IS NOT NULL AND NOT target"  # of RELINKED: merged, not made again
_TARGETS = f"(SELECT DISTINCT project_id, user_id FROM {IDENTITIES})"  # the ids linked to

_WHO = "coalesce(e.user_id, e.anonymous_id)"
_FLAVOR = DuckDBFlavor(EVENTS, IDENTITIES)  # a value's SQL as the reports write it


def _dimensions(metric: str) -> str:
    """The `dimension`s of a metric's rows, as an SQL list."""
    return ", ".join(f"'{d}'" for d, kept in SEEN_DIMENSIONS.items() if kept.metric == metric)


_OF_PEOPLE = f"s.dimension IN ({_dimensions('users')})"
# The kinds of rows kept per an id the events carry themselves (no identity links): the
# metric, its column, the events that count (bots' are no one's visits), and the temporary
# table (project_id, <column>) of the ids whose rows an erasure makes again
_SESSIONS_NOTED = "roost_seen_sessions"
_BY_ID = (
    ("visitors", "visitor", "NOT coalesce(e.bot, 1 = 0)", "roost_seen_visitors"),
    ("sessions", "session_id", "1 = 1", _SESSIONS_NOTED),
)
_OF_EVENTS = "min(timestamp) AS first, max(timestamp) AS last, count(*) AS events"
_MERGED = "min(first) AS first, max(last) AS last, sum(events)::BIGINT AS events"
_INSERTED = ", ".join(f"n.{c.name}" for c in SEEN_COLUMNS)
_KEYS = (
    "s.project_id = n.project_id AND s.dimension = n.dimension "
    "AND s.value IS NOT DISTINCT FROM n.value AND s.person = n.person"
)


def _seen_of(where: str, links: str | None = IDENTITIES, among: str | None = None) -> str:
    """The last-seen rows of the events `where` (a condition on `e`) selects — of the ids in
    `among` (project_id, who) only, if given — each person resolved by the identity links of
    the relation `links` (project_id, alias, user_id)."""
    events = _among(among, "who", _WHO)
    joined = f" LEFT JOIN {links} i ON i.project_id = e.project_id AND i.alias = {_WHO}"
    person = f"coalesce(i.user_id, {_WHO})" if links else _WHO
    resolved = (
        f"(SELECT e.*, {person} AS person FROM {events} e{joined if links else ''} "
        f"WHERE ({where}) AND {_WHO} IS NOT NULL)"
    )
    return _by("users", "person", resolved, "1 = 1")


def _among(among: str | None, column: str, of: str) -> str:
    """The events, or of the ids in `among` (project_id, `column`: the events' `of`) only."""
    if not among:
        return EVENTS
    # a join: as EXISTS, DuckDB took ~6× as long
    return (
        f"(SELECT e.* FROM {EVENTS} e SEMI JOIN {among} AS d "
        f"ON d.project_id = e.project_id AND d.{column} = {of})"
    )


def _of_ids(where: str, noted: bool = False) -> list[str]:
    """The last-seen rows of each kind of `_BY_ID` of the events `where` (a condition on `e`)
    selects — of the ids its table notes only, if `noted`."""
    return [
        _by(metric, column, _among(table if noted else None, column, f"e.{column}"),
            f"({where}) AND e.{column} IS NOT NULL AND {counted}")
        for metric, column, counted, table in _BY_ID
    ]  # fmt: skip


def _every(where: str, links: str | None = IDENTITIES) -> str:
    """Every kind of last-seen rows of the events `where` (a condition on `e`) selects."""
    return f"({' UNION ALL '.join([_seen_of(where, links), *_of_ids(where)])})"


def value_of(kept: Seen) -> str | None:
    """The `value` rows of `kept` (a SEEN_DIMENSIONS entry) hold, of an event `e`, in SQL
    (None: they hold none) — what the error hours group by too (duckdb_errors.py)."""
    if kept.column and kept.prop:
        return f"coalesce({_FLAVOR.prop('e.properties', kept.prop)}, e.{kept.column})"
    if kept.column and kept.after:
        return _FLAVOR.after(f"e.{kept.column}", kept.after)
    return kept.column


def _by(metric: str, who: str, events: str, where: str) -> str:
    """The last-seen rows of `metric` (schema.py's SEEN_DIMENSIONS) of the rows `where` (a
    condition on `e`) selects of `events`, whose `who` is the person (or visitor, session)."""
    parts = []
    for dimension, kept in SEEN_DIMENSIONS.items():
        if kept.metric != metric:
            continue
        only = ""
        if kept.only:
            column, wanted = kept.only
            listed = (wanted,) if isinstance(wanted, str) else wanted
            only = f" AND e.{column} IN ({', '.join(_FLAVOR.string(w) for w in listed)})"
        if kept.column and kept.after:
            only += f" AND {_FLAVOR.after(f'e.{kept.column}', kept.after)} IS NOT NULL"
        if kept.positive:
            only += f" AND e.{kept.positive} > 0"
        value = value_of(kept)
        column = f", {value}" if value else ""
        parts.append(
            f"SELECT project_id, '{dimension}' AS dimension, {value or 'NULL'}::VARCHAR "
            f"AS value, {who} AS person, {_OF_EVENTS} FROM {events} AS e "
            f"WHERE {where}{only} GROUP BY project_id, {who}{column}"
        )
    return " UNION ALL ".join(parts)


def create(con: duckdb.DuckDBPyConnection, rolled: str) -> bool:
    """Create the table if it is missing, of another shape (made from the events, so made
    again rather than altered), behind the rollups' offset `rolled` (SQL; None: there are none
    yet) or kept per other columns; whether it was (then `fill` it)."""
    return remade(con, _TABLES, f"SELECT held = {rolled} AND kept = ? FROM {HELD}", [KEPT])


def make(con: duckdb.DuckDBPyConnection) -> None:
    """Make the tables anew, empty (then `fill` them)."""
    made(con, _TABLES)


def drop(con: duckdb.DuckDBPyConnection) -> None:
    dropped(con, _TABLES)


def fill(con: duckdb.DuckDBPyConnection, upto: str) -> None:
    """Make the rows from every event up to the offset `upto` (SQL)."""
    every = f"e.log_offset <= {upto}"
    con.execute(f"INSERT INTO {SEEN} SELECT * FROM {_every(every)} ORDER BY {ORDER}")
    sessions.fill_rows(con, upto)
    con.execute(f"INSERT INTO {HELD} SELECT {upto}, (SELECT count(*) FROM {SEEN}), ?", [KEPT])


def unsorted(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether enough rows were added past those in order for `sort` to pay."""
    query = f"SELECT (SELECT count(*) FROM {SEEN}), sorted FROM {HELD}"
    total, ordered = con.execute(query).fetchall()[0]
    return bool(total - ordered >= max(UNSORTED_MIN, UNSORTED_SHARE * ordered))


def sort(con: duckdb.DuckDBPyConnection) -> None:
    """Put the rows in order again (~4.6 s at 12.5 M rows)."""
    con.execute(f"CREATE TABLE {SEEN}_sorted AS SELECT * FROM {SEEN} ORDER BY {ORDER}")
    con.execute(f"DROP TABLE {SEEN}")
    con.execute(f"ALTER TABLE {SEEN}_sorted RENAME TO seen")
    con.execute(f"UPDATE {HELD} SET sorted = (SELECT count(*) FROM {SEEN})")


def read_by(sql: str) -> bool:
    """Whether a report's `sql` reads the rows kept here: a report that does not needs them
    merged no further (a roll's merge of a few events reads every row's keys: ~20–40 ms of
    the ~50–100 a report after new events spent rolling them up, at 10 M events)."""
    return any(f"{table} " in sql or f"{table})" in sql for table, _ in _TABLES)


def held(con: duckdb.DuckDBPyConnection) -> int:
    """The offset the rows hold the events up to."""
    row = con.execute(f"SELECT held FROM {HELD}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def roll(con: duckdb.DuckDBPyConnection, upto: int, links: Mapping[tuple[int, str], str]) -> None:
    """Merge in the last times of the events after the offset held, up to `upto` (`links`:
    the identity links, what IDENTITIES holds).

    Merging costs a pass over the rows' keys whatever the events (~85 ms for 40,000 people's
    at 6.6 M rows), so the Loader merges many rolls' events at once (`MERGE_EVENTS`), and a report
    all that is left first (it reads the rows and the events up to the same offset)."""
    new = f"e.log_offset > (SELECT held FROM {HELD}) AND e.log_offset <= {int(upto)}"
    with links_of(con, new, links) as linked:
        _merge(con, _every(new, linked))
    sessions.merge_rows(con, new)
    con.execute(f"UPDATE {HELD} SET held = {int(upto)}")


def _merge(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Merge last-seen `rows` in: the earlier first time, the later last, the events added."""
    con.execute(
        f"MERGE INTO {SEEN} s USING {rows} AS n ON {_KEYS} "
        "WHEN MATCHED THEN UPDATE SET first = least(s.first, n.first), "
        "last = greatest(s.last, n.last), events = s.events + n.events "
        f"WHEN NOT MATCHED THEN INSERT VALUES ({_INSERTED})"
    )


def relinking(con: duckdb.DuckDBPyConnection, relinked: str) -> None:
    """Note each id of `relinked` (project_id, alias: those whose link is about to change)
    with its link as IDENTITIES holds it before the change (then `relinked_after`)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {RELINKED} AS SELECT r.project_id, r.alias, "
        "i.user_id AS was, NULL::VARCHAR AS now, t.user_id IS NOT NULL AS target "
        f"FROM {relinked} r LEFT JOIN {IDENTITIES} i "
        "ON i.project_id = r.project_id AND i.alias = r.alias "
        f"LEFT JOIN {_TARGETS} t ON t.project_id = r.project_id AND t.user_id = r.alias"
    )


def relinked_after(con: duckdb.DuckDBPyConnection) -> None:
    """With IDENTITIES changed, make the rows of the ids `relinking` noted follow: an id that
    was a person of its own, with no id linked to it, has its rows merged into its new
    person's (most changes: a visitor signs up); the people before and after of every other
    are noted for `remake`."""
    con.execute(
        f"UPDATE {RELINKED} r SET now = i.user_id FROM {IDENTITIES} i "
        "WHERE i.project_id = r.project_id AND i.alias = r.alias"
    )
    con.execute(
        f"UPDATE {RELINKED} r SET target = true FROM {_TARGETS} t "
        "WHERE t.project_id = r.project_id AND t.user_id = r.alias"
    )
    moved = f"(SELECT project_id, alias, now FROM {RELINKED} WHERE {_MOVED})"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE roost_seen_moved AS SELECT s.project_id, s.dimension, "
        f"s.value, m.now AS person, s.first, s.last, s.events FROM {SEEN} s JOIN {moved} m "
        f"ON m.project_id = s.project_id AND m.alias = s.person WHERE {_OF_PEOPLE}"
    )
    con.execute(
        f"DELETE FROM {SEEN} s USING {moved} m "
        f"WHERE s.project_id = m.project_id AND s.person = m.alias AND {_OF_PEOPLE}"
    )
    _merge(con, f"(SELECT project_id, dimension, value, person, {_MERGED} "
                "FROM roost_seen_moved GROUP BY ALL)")  # fmt: skip
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {PEOPLE} AS "
        f"SELECT project_id, coalesce(was, alias) AS person FROM {RELINKED} WHERE NOT ({_MOVED}) "
        f"UNION SELECT project_id, coalesce(now, alias) FROM {RELINKED} WHERE NOT ({_MOVED})"
    )
    for _, column, _, table in _BY_ID:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (project_id INTEGER, {column} VARCHAR)")


def erasing(con: duckdb.DuckDBPyConnection, condition: str, params: list[object]) -> None:
    """Note the people, visitors and sessions of the events about to be erased (`condition`
    selects them)."""
    for _, column, _, table in _BY_ID:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT DISTINCT project_id, {column} "
            f"FROM {EVENTS} WHERE ({condition}) AND {column} IS NOT NULL",
            params,
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {PEOPLE} AS SELECT DISTINCT e.project_id, "
        "coalesce(i.user_id, e.who) AS person FROM (SELECT project_id, "
        f"coalesce(user_id, anonymous_id) AS who FROM {EVENTS} WHERE {condition}) e "
        f"LEFT JOIN {IDENTITIES} i ON i.project_id = e.project_id AND i.alias = e.who "
        "WHERE e.who IS NOT NULL",
        params,
    )


def remake(con: duckdb.DuckDBPyConnection) -> None:
    """Make the rows of the people, visitors and sessions noted (`relinking`, `erasing`)
    again from their events up to the offset the rows hold (the rollups' may be past it: the
    merge after adds those, and a count of events must not take any twice)."""
    upto = f"(SELECT held FROM {HELD})"
    made_again = _of_ids(f"e.log_offset <= {upto}", noted=True)
    for (metric, column, _, table), rows in zip(_BY_ID, made_again, strict=True):
        if con.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall():
            con.execute(
                f"DELETE FROM {SEEN} s USING {table} v WHERE s.project_id = v.project_id "
                f"AND s.person = v.{column} AND s.dimension IN ({_dimensions(metric)})"
            )
            con.execute(f"INSERT INTO {SEEN} {rows}")
    sessions.remake_rows(con, _SESSIONS_NOTED, upto)
    if con.execute(f"SELECT 1 FROM {PEOPLE} LIMIT 1").fetchall():
        _remake_people(con, upto)


def _remake_people(con: duckdb.DuckDBPyConnection, upto: str) -> None:
    """A person's events are those of their own id (unless it is linked to another) and of
    the ids linked to them."""
    people = f"(SELECT DISTINCT project_id, person FROM {PEOPLE})"
    con.execute(
        f"DELETE FROM {SEEN} s USING {people} p "
        f"WHERE s.project_id = p.project_id AND s.person = p.person AND {_OF_PEOPLE}"
    )
    ids = (
        f"(SELECT project_id, person AS who FROM {people} UNION "
        f"SELECT i.project_id, i.alias FROM {IDENTITIES} i JOIN {people} p "
        "ON p.project_id = i.project_id AND p.person = i.user_id)"
    )
    con.execute(
        f"INSERT INTO {SEEN} SELECT n.* FROM ({_seen_of(f'e.log_offset <= {upto}', among=ids)}) AS n "
        f"SEMI JOIN {people} p ON p.project_id = n.project_id AND p.person = n.person"
    )


def seen(project_id: int) -> str:
    """A relation of the project's last-seen rows."""
    return f"(SELECT * FROM {SEEN} WHERE project_id = {int(project_id)})"
