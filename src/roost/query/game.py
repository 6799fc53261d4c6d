"""The game reports (docs/wire-contracts.md, dialect 2), on the Stats API's engine: sessions, errors by
signature, run analytics and resource flows.

Every report takes the Stats API's `date_range`, `timezone` and `filters`. Names follow the
game convention `Verb:Subject`: progression `Start:Run` / `Complete:Run` / `Fail:Run` (the
run is the subject), resource `Source:Gold` / `Sink:Gold` with a positive value (the
currency is the subject), session `Session:Start` / `Session:End`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from roost.dialects.game import GAME_TYPES
from roost.errors import BadRequest
from roost.query import rollup, stats
from roost.storage.warehouse.flavor import INTERVALS, Flavor
from roost.storage.warehouse.schema import SEEN_DIMENSIONS, SESSION_MERGED

GROUPABLE = ("build", "dim1", "dim2", "dim3")
REPORTS = ("sessions", "errors", "runs", "resources", "players")
TIMED = ("sessions", "players")  # the reports that also group by time:<interval>


@dataclass(frozen=True)
class GameReport:
    kind: str
    scope: stats.StatsQuery
    by: list[str]  # extra grouping: build, dim1–3, or time:<interval> (sessions)
    limit: int


def _bad(field: str, rule: str) -> BadRequest:
    return BadRequest(f"{field}: {rule}", field=field)


def parse(kind: str, body: Any, now: datetime) -> GameReport:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    unknown = sorted(set(body) - {"date_range", "timezone", "filters", "by", "limit"})
    if unknown:
        raise _bad(unknown[0], f"is not a field of the {kind} report")
    shared = {k: body[k] for k in ("date_range", "timezone", "filters") if k in body}
    scope = stats.parse({"metrics": ["events"], **shared}, now)
    by = body.get("by", [])
    allowed = [*GROUPABLE, *(f"time:{i}" for i in INTERVALS)] if kind in TIMED else GROUPABLE
    if not isinstance(by, list):
        raise _bad("by", f"must be a list of {', '.join(allowed)}")
    for i, name in enumerate(by):
        if name not in allowed:
            raise _bad(f"by[{i}]", f"must be one of {', '.join(allowed)}")
    limit = body.get("limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= stats.MAX_LIMIT:
        raise _bad("limit", f"must be a whole number from 1 to {stats.MAX_LIMIT}")
    return GameReport(kind, scope, list(by), limit)


def _keys(r: GameReport) -> tuple[str, str]:
    """(select list, group by list) of the `by` columns, as k0, k1, …"""
    select = "".join(f"{name} AS k{i}, " for i, name in enumerate(r.by))
    group = "".join(f", k{i}" for i in range(len(r.by)))
    return select, group


def _sessions(r: GameReport, base: str, flavor: Flavor, kept: str | None = None) -> str:
    """`kept`: each session's values in the range from the rows the Warehouse keeps, to read
    instead of the events of `base` (`_kept_sessions` says when)."""
    # The inner names differ from the outer ones: ClickHouse's aliases are global to a query
    first = "coalesce(started_at, first_seen)"
    each = (
        "SELECT session_id, "
        "min(CASE WHEN event = 'Session:Start' THEN timestamp END) AS started_at, "
        "max(CASE WHEN event = 'Session:End' THEN timestamp END) AS ended_at, "
        "min(timestamp) AS first_seen, max(timestamp) AS last_seen, count(*) AS events, "
        "min(build) AS build, min(dim1) AS dim1, min(dim2) AS dim2, min(dim3) AS dim3 "
        # a game session carries its build (every game event does): a web or Segment
        # session (context.sessionId, no build) is not one. Filtered a level down: here
        # `build` is also min(build)'s alias, and ClickHouse's aliases are query-global
        f"FROM (SELECT * FROM {base} AS b0 WHERE session_id IS NOT NULL AND build IS NOT NULL) "
        "AS b GROUP BY session_id"
    )
    if kept is not None:
        each = kept
    keys = []
    for name in r.by:
        if name.startswith("time:"):
            keys.append(flavor.bucket(name[5:], flavor.local(first, r.scope.timezone)))
        else:
            keys.append(name)
    select = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    group = " GROUP BY " + ", ".join(f"k{i}" for i in range(len(keys))) if keys else ""
    duration = flavor.seconds(first, "coalesce(ended_at, last_seen)")
    return (
        f"SELECT {select}count(*) AS sessions, "
        "count(ended_at) AS ended, "
        f"avg({duration}) AS avg_duration, avg(events) AS avg_events "
        f"FROM ({each}) AS per_session{group} "
        f"ORDER BY {', '.join([*(f'k{i}' for i in range(len(keys))), 'sessions DESC'])}"
    )


ERROR = "error"  # the players' last-seen rows per signature (schema.py's SEEN_DIMENSIONS)


def _signature(flavor: Flavor) -> str:
    """An error's signature, as its players' last-seen rows keep it."""
    kept = SEEN_DIMENSIONS[ERROR]
    return f"coalesce({flavor.prop('properties', str(kept.prop))}, {kept.column})"


def _errors(
    r: GameReport,
    base: str,
    flavor: Flavor,
    seen: tuple[str, str] | None = None,
    hourly: bool = False,
) -> str:
    """Errors per signature; `seen`: (the range's events with `person`, the last-seen rows)
    to count the players from, `base` then needing no people, and being the error hours if
    `hourly` (storage/warehouse/schema.py's ERROR_COLUMNS)."""
    select, group = _keys(r)
    signature = "signature" if hourly else _signature(flavor)
    players = "" if seen else "count(DISTINCT person) AS players, "
    occurrences, first, last, only = (
        ("sum(events)", "min(first)", "max(last)", "")
        if hourly
        else ("count(*)", "min(timestamp)", "max(timestamp)", " WHERE category = 'error'")
    )
    errors = (
        f"SELECT {select}{signature} AS signature, min(event) AS name, "
        f"{occurrences} AS occurrences, {players}{first} AS first_seen, {last} AS last_seen, "
        f"{flavor.distinct_list('build')} AS builds "
        f"FROM {base} AS b{only} GROUP BY signature{group}"
    )
    if seen is None:  # a signature's rows per `by` in the order of those too: a LIMIT cuts ties
        return f"{errors} ORDER BY occurrences DESC, signature{group}"
    # no groups: the events without their people (reading each error's ids and their links
    # was most of the report: at 10 M events ~110 → ~50 ms), the players a count of rows
    events, rows = seen
    hit = f"(SELECT *, {signature} AS d0 FROM {events} AS e WHERE category = 'error')"
    counted = rollup.counted_seen(r.scope, "users", rows, hit, flavor, ERROR)
    return (
        "SELECT c.signature, c.name, c.occurrences, coalesce(p.users, 0) AS players, "
        f"c.first_seen, c.last_seen, c.builds FROM ({errors}) AS c "
        f"LEFT JOIN ({counted}) AS p ON p.d0 = c.signature "
        "ORDER BY occurrences DESC, signature"
    )


# what the runs and resources reports count: (category, {verb: column}, measure summed)
VERBS = {
    "runs": ("progression", {"Start": "starts", "Complete": "completes", "Fail": "fails"}, "1"),
    "resources": ("resource", {"Source": "sources", "Sink": "sinks"}, "value"),
}
SEEN_PER = {"runs": "run", "resources": "resource"}  # their players' last-seen rows (schema.py)


def _verbs(
    r: GameReport,
    base: str,
    flavor: Flavor,
    seen: tuple[str, str] | None = None,
    tallied: bool = False,
) -> str:
    """Runs or resources per subject, and their players; `seen`: (the range's events with
    `person`, the last-seen rows) to count the players from, `base` then needing no people,
    and being the hourly counts if `tallied` (storage/warehouse/schema.py's COUNT_COLUMNS)."""
    category, verbs, measure = VERBS[r.kind]
    select, group = _keys(r)
    verb = flavor.before("event", ":")
    subject = flavor.after("event", ":")
    aggregate = "count" if measure == "1" else "sum"  # count: a sum of 1s may be typed too small
    columns = ", ".join(
        f"coalesce({aggregate}(CASE WHEN {verb} = {flavor.string(v)} THEN {measure} END), 0) "
        f"AS {alias}"
        for v, alias in verbs.items()
    )
    extra = " AND value > 0" if category == "resource" else ""
    kind = f"category = {flavor.string(category)}{extra}"
    which = f"{kind} AND {subject} IS NOT NULL"
    if seen is None:
        return (
            f"SELECT {select}{subject} AS subject, {columns}, count(DISTINCT person) AS players "
            f"FROM {base} AS b WHERE {which} GROUP BY subject{group} ORDER BY subject{group}"
        )
    # no groups: the counts of the events without their people (per name first: the name's
    # parts are then taken of a few names, not of every event), the players a count of rows
    # (at 10 M events, runs ~310 → ~80 ms, resources ~200 → ~55 ms)
    events, rows = seen
    played = f"(SELECT *, {subject} AS d0 FROM {events} AS e WHERE {which})"
    players = rollup.counted_seen(r.scope, "users", rows, played, flavor, SEEN_PER[r.kind])
    total, only = ("count(*)" if measure == "1" else f"sum({measure})"), kind
    if tallied:  # each row's events, or its sum of positive values (NULL: none moved any)
        counted = measure == "1"
        total = "sum(events)" if counted else "sum(moved)"
        only = f"category = {flavor.string(category)}{'' if counted else ' AND moved IS NOT NULL'}"
    named = f"SELECT event, {total} AS n FROM {base} AS b WHERE {only} GROUP BY event"
    summed = ", ".join(
        f"coalesce(sum(CASE WHEN {verb} = {flavor.string(v)} THEN n END), 0) AS {alias}"
        for v, alias in verbs.items()
    )
    counts = (
        f"SELECT {subject} AS subject, {summed} FROM ({named}) AS n "
        f"WHERE {subject} IS NOT NULL GROUP BY subject"
    )
    return (
        f"SELECT c.*, coalesce(p.users, 0) AS players FROM ({counts}) AS c "
        f"LEFT JOIN ({players}) AS p ON p.d0 = c.subject ORDER BY subject"
    )


BUILDERS: dict[str, Callable[[GameReport, str, Flavor], str]] = {
    "sessions": _sessions,
    "errors": _errors,
    "runs": _verbs,
    "resources": _verbs,
}


PLAYING = "category IN (" + ", ".join(f"'{t}'" for t in GAME_TYPES) + ")"  # a game event
PLAYER = "player"  # the players' last-seen rows (schema.py's SEEN_DIMENSIONS)


def _players(r: GameReport, base: str, firsts: str, flavor: Flavor) -> str:
    """Players (people with game events) per group, and how many of them are new: their
    first game event ever (`firsts`: each player's, person and first) is in the range — and,
    by time, in that bucket."""
    times = [b[5:] for b in r.by if b.startswith("time:")]
    keys = [
        flavor.bucket(b[5:], flavor.local("timestamp", r.scope.timezone))
        if b.startswith("time:") else b
        for b in r.by
    ]  # fmt: skip
    if times:
        first = flavor.bucket(times[0], flavor.local("first", r.scope.timezone))
        k = r.by.index(f"time:{times[0]}")
        new = f"(person, k{k}) IN (SELECT person, {first} FROM {firsts} AS f)"
    else:
        start = flavor.timestamp(r.scope.start)
        new = f"person IN (SELECT person FROM {firsts} AS f WHERE first >= {start})"
    select = "".join(f"{key} AS k{i}, " for i, key in enumerate(keys))
    group = " GROUP BY " + ", ".join(f"k{i}" for i in range(len(keys))) if keys else ""
    order = " ORDER BY " + ", ".join(f"k{i}" for i in range(len(keys))) if keys else ""
    # each (group, player) once, then counted: two distinct counts of the same pairs cost
    # ~1.5× as much (players by month at 10 M events 259 → 169 ms)
    played = f"SELECT DISTINCT {select}person FROM {base} AS b WHERE {PLAYING}"
    return (
        f"SELECT {''.join(f'k{i}, ' for i in range(len(keys)))}count(*) AS players, "
        f"coalesce(sum(CASE WHEN {new} THEN 1 ELSE 0 END), 0) AS new_players "
        f"FROM ({played}) AS played{group}{order}"
    )


ROLLING_DAYS = 30  # monthly players: the players of the 30 days up to each day


def _people(r: GameReport, scope: stats.StatsQuery, project_id: int, flavor: Flavor) -> str:
    """The events (with `person`) of `scope` the players report counts — or the presence
    rows of them, when its groups and filters are presence columns and its hours whole
    (query/rollup.py): players are who had a game event, and presence rows keep who did
    what category of event in each hour, a few times fewer rows than the events."""
    return stats.base_relation(
        scope,
        project_id,
        flavor,
        scope.filters,
        people=True,
        rows=_presence(r, scope, project_id, flavor),
    )


def _presence(
    r: GameReport, scope: stats.StatsQuery, project_id: int, flavor: Flavor
) -> str | None:
    """The presence rows the players report may count `scope`'s players from, if any."""
    if all(b.startswith("time:") or b in rollup.COLUMNS for b in r.by):
        return rollup.relation(replace(scope, metrics=["users"]), project_id, flavor)
    return None


def _players_of(r: GameReport, project_id: int, rows: str | None, flavor: Flavor) -> str:
    """The players report: by the players' last-seen rows where they answer it (kept, and no
    filter: they hold every game event; `rows`: them), else from the presence rows or the
    events."""
    base = _people(r, r.scope, project_id, flavor)
    kept = None if r.scope.filters else flavor.seen(project_id)
    if kept is not None:
        if not r.by and rows is not None:
            return _players_seen(r, rows, f"(SELECT * FROM {base} AS b WHERE {PLAYING})", flavor)
        by_time = len(r.by) == 1 and r.by[0].startswith("time:")
        if by_time and rows is not None and rollup.ends_after_asked(r.scope):
            return _players_by_time(r, rows, base, flavor)
        firsts = f"(SELECT person, first FROM {rollup.of_kind(kept, PLAYER, flavor)} AS s)"
        return _players(r, base, firsts, flavor)
    always = replace(r.scope, start=datetime(1970, 1, 1), end=datetime(9999, 1, 1))
    everything = _people(r, always, project_id, flavor)
    if not r.by and None not in (_presence(r, s, project_id, flavor) for s in (r.scope, always)):
        return _players_once(r, everything, flavor)
    firsts = (
        f"(SELECT person, min(timestamp) AS first FROM {everything} AS a "
        f"WHERE {PLAYING} GROUP BY person)"
    )
    return _players(r, base, firsts, flavor)


def _players_seen(r: GameReport, rows: str, played: str, flavor: Flavor) -> str:
    """Players and new players in all from the players' last-seen rows `rows`
    (rollup.counted_seen; `played`: the range's game events, with `person`): a new one's
    first game event is in the range."""
    players = rollup.counted_seen(r.scope, "users", rows, played, flavor, PLAYER)
    new = _new_players(r, rows, flavor)
    return f"SELECT p.users AS players, n.new_players FROM ({players}) AS p, ({new}) AS n"


def _new_players(r: GameReport, rows: str, flavor: Flavor, bucket: str | None = None) -> str:
    """How many players' first game event lies in the range (by the players' rows of the
    last-seen rows `rows`) — per `bucket` of their first time (d0), if given."""
    key, group = (f"{bucket} AS d0, ", " GROUP BY 1") if bucket else ("", "")
    firsts = rollup.where(rollup.in_range(r.scope, flavor, "first", "first"))
    return (
        f"SELECT {key}count(*) AS new_players FROM {rollup.of_kind(rows, PLAYER, flavor)} AS s"
        f"{firsts}{group}"
    )


def _players_by_time(r: GameReport, rows: str, base: str, flavor: Flavor) -> str:
    """Players and new players per time bucket (k0) from the players' last-seen rows `rows`
    (rollup.counted_by_time; `base`: the range's rows, with `person`): a new one's first game
    event is in the range, and in its bucket."""
    interval = r.by[0][5:]
    scope = replace(r.scope, dimensions=[stats.Dimension(r.by[0], "time", interval)])
    bucket = flavor.bucket(interval, flavor.local("timestamp", r.scope.timezone))
    played = f"(SELECT {bucket} AS d0, * FROM {base} AS b WHERE {PLAYING})"
    players = rollup.counted_by_time(scope, "users", rows, played, flavor, PLAYER)
    first = flavor.bucket(interval, flavor.local("first", r.scope.timezone))
    new = _new_players(r, rows, flavor, first)
    return (
        "SELECT p.d0 AS k0, p.users AS players, coalesce(n.new_players, 0) AS new_players "
        f"FROM ({players}) AS p LEFT JOIN ({new}) AS n ON n.d0 = p.d0 ORDER BY k0"
    )


def _players_once(r: GameReport, everything: str, flavor: Flavor) -> str:
    """Players and new players in all (no groups) in one pass over `everything`, whose rows
    each lie wholly inside or outside the range (presence rows of whole hours): a player
    has a row in it, a new one's first row is in it (against ~2× for a pass over the range,
    then one over all time for the new: 150 → 80 ms at 10 M events)."""
    start, end = flavor.timestamp(r.scope.start), flavor.timestamp(r.scope.end)
    inside = f"timestamp >= {start} AND timestamp < {end}"
    each = (
        "SELECT person, min(timestamp) AS came, "
        f"max(CASE WHEN {inside} THEN 1 ELSE 0 END) AS here "
        f"FROM {everything} AS a WHERE {PLAYING} GROUP BY person"
    )
    return (
        "SELECT count(*) AS players, "
        f"coalesce(sum(CASE WHEN came >= {start} THEN 1 ELSE 0 END), 0) AS new_players "
        f"FROM ({each}) AS p WHERE here = 1"
    )


def _monthly(r: GameReport, project_id: int, flavor: Flavor) -> str:
    """Per day of the range, the players of the ROLLING_DAYS days ending that day (k0,
    monthly_players)."""
    # a day more than needed: the range starts at a local midnight, and DST may move it
    earlier = replace(r.scope, start=r.scope.start - timedelta(days=ROLLING_DAYS + 1))
    base = _people(r, earlier, project_id, flavor)
    day = flavor.bucket("day", flavor.local("timestamp", r.scope.timezone))
    played = f"SELECT {day} AS m0, person FROM {base} AS m WHERE {PLAYING}"
    rolled = flavor.rolling_people(played, "m0", ROLLING_DAYS)

    def local_day(at: datetime) -> str:
        return flavor.bucket("day", flavor.local(flavor.timestamp(at), r.scope.timezone))

    first, last = local_day(r.scope.start), local_day(r.scope.end - timedelta(microseconds=1))
    return (
        f"SELECT k0, people AS monthly_players FROM ({rolled}) AS l "
        f"WHERE k0 >= {first} AND k0 <= {last}"
    )


_NAMED = {"started": "started_at", "ended": "ended_at"}  # as `_sessions` names them
_MERGED = ", ".join(f"{v} AS {_NAMED.get(k, k)}" for k, v in SESSION_MERGED.items())
_AS_ROWS = ", ".join(f"{k} AS {_NAMED.get(k, k)}" for k in SESSION_MERGED)


def _kept_sessions(r: GameReport, project_id: int, flavor: Flavor) -> str | None:
    """Each session's values in the range (session_id, started_at, ended_at, …) from the
    session hours, if the Warehouse keeps them and they answer `r` as its events do: no
    filter (it would pick events, not sessions), and a range of whole UTC hours (each hour's
    rows wholly in it or out; by time, a session is bucketed by its start's own time, in any
    zone). With session rows too, those of the sessions whose hours all lie in the range,
    and the hours merged of only those it cuts."""
    hours = flavor.session_hours(project_id)
    if hours is None or r.scope.filters or not rollup.whole_hours(r.scope):
        return None
    inside = rollup.in_range(r.scope, flavor, "timestamp", "timestamp")
    rows = flavor.session_rows(project_id)
    if rows is None:
        merged = f"FROM {hours} AS h{rollup.where(inside)} GROUP BY session_id"
        return f"SELECT session_id, {_MERGED} {merged}"
    if inside is None:  # all time: every session lies wholly in it, none is cut
        return f"SELECT session_id, {_AS_ROWS} FROM {rows} AS w"
    within = rollup.in_range(r.scope, flavor, "first_hour", "last_hour")
    overlapping = rollup.in_range(r.scope, flavor, "last_hour", "first_hour")
    cut = f"{overlapping} AND NOT ({within})"
    return (
        f"SELECT session_id, {_AS_ROWS} FROM {rows} AS w WHERE {within} UNION ALL "
        f"SELECT session_id, {_MERGED} FROM {hours} AS h WHERE {inside} "
        f"AND session_id IN (SELECT session_id FROM {rows} AS c WHERE {cut}) GROUP BY session_id"
    )


def build(r: GameReport, project_id: int, flavor: Flavor) -> str:
    # sessions count no people: no identity links to resolve (unless a filter names a user)
    people = r.kind != "sessions"
    base = stats.base_relation(r.scope, project_id, flavor, r.scope.filters, people=people)
    if r.kind == "sessions":
        kept = _kept_sessions(r, project_id, flavor)
        return f"{_sessions(r, base, flavor, kept)} LIMIT {r.limit}"
    rows = flavor.seen(project_id)
    if r.kind in VERBS and rows is not None and not r.by and not r.scope.filters:
        # the events per name from the hourly counts, if its hours are whole (~50 → ~5 ms
        # at 10 M events), else from the events without their people
        tally = rollup.counts(replace(r.scope, dimensions=[]), project_id, flavor, ["events"])
        counted = stats.base_relation(r.scope, project_id, flavor, [], people=False, rows=tally)
        verbs = _verbs(r, counted, flavor, (base, rows), tallied=tally is not None)
        return f"{verbs} LIMIT {r.limit}"
    if r.kind == "errors" and rows is not None and not r.by and not r.scope.filters:
        # occurrences, names, builds and times from the error hours, if its hours are whole
        # (at 10 M events 49 → ~5 ms, at 100 M ~1 s: every event's category read), else from
        # the events without their people
        hours = flavor.error_hours(project_id) if rollup.whole_hours(r.scope) else None
        bare = stats.base_relation(r.scope, project_id, flavor, [], people=False, rows=hours)
        errors = _errors(r, bare, flavor, (base, rows), hourly=hours is not None)
        return f"{errors} LIMIT {r.limit}"
    if r.kind == "players":
        players = _players_of(r, project_id, rows, flavor)
        if r.by == ["time:day"]:  # DAU / MAU: each day's players beside its month's
            players = (  # a day of no players may still have players in its 30 days
                "SELECT k0, coalesce(players, 0) AS players, "
                "coalesce(new_players, 0) AS new_players, monthly_players "
                f"FROM ({_monthly(r, project_id, flavor)}) AS m "
                f"{flavor.left_join_one()} ({players}) AS p USING (k0) ORDER BY k0"
            )
        return f"{players} LIMIT {r.limit}"
    return f"{BUILDERS[r.kind](r, base, flavor)} LIMIT {r.limit}"


def _percent(part: Any, whole: Any) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def shape(r: GameReport, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    results = []
    for row in rows:
        item = dict(zip(columns, row, strict=True))
        item["by"] = [item.pop(f"k{i}") for i in range(len(r.by))]
        for name in ("avg_duration", "avg_events", "sources", "sinks"):
            if item.get(name) is not None:
                item[name] = round(float(item[name]), 2)
        if r.kind == "runs":
            item["completion_rate"] = _percent(item["completes"], item["starts"])
            item["fail_rate"] = _percent(item["fails"], item["starts"])
        if r.kind == "resources":
            item["net"] = round(item["sources"] - item["sinks"], 2)
        if "monthly_players" in item:
            item["stickiness"] = _percent(item["players"], item["monthly_players"])
        if r.kind in TIMED and any(b.startswith("time:") for b in r.by):
            item["by"] = [
                str(v)[:13] + ":00:00" if b == "time:hour" else str(v)[:10]
                if b.startswith("time:") else v
                for b, v in zip(r.by, item["by"], strict=True)
            ]  # fmt: skip
        results.append(item)
    return {
        "results": results,
        "query": {
            "report": r.kind,
            "by": r.by,
            **r.scope.stated(),
        },
    }
