"""The few places where the Warehouses' SQL differs, one function each.

Reports (query/stats.py) are written once against this protocol; each Warehouse hands the
one that renders its SQL. Everything else in a report is the SQL both engines share
(SELECT, WHERE, GROUP BY, CASE, count(DISTINCT …), sum, avg). Values reach SQL as literals
the flavor writes (the engines escape differently), never as text pasted in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from roost.storage.warehouse.schema import ENTERED

INTERVALS = ("hour", "day", "week", "month")
DATETIME_FIRST = datetime(1970, 1, 1)  # ClickHouse's DateTime range
DATETIME_LAST = datetime(2105, 12, 31)


RANGES_PER_STATEMENT = 1000  # ~50 kB of SQL: well under ClickHouse's max_query_size (256 KiB)


def in_ranges(column: str, ranges: Sequence[tuple[int, int]]) -> str:
    """A condition: an integer column within any of the (first, last) ranges (at most
    RANGES_PER_STATEMENT of them: give more in several statements)."""
    assert len(ranges) <= RANGES_PER_STATEMENT
    spans = " OR ".join(f"{column} BETWEEN {int(a)} AND {int(b)}" for a, b in ranges)
    return f"({spans or '1 = 0'})"  # 1 = 0: no FALSE in ClickHouse 18


def _attributes(attributes: Sequence[str] | None) -> list[str]:
    """Of a visit's columns after pageviews (entry and exit page, what its first event had),
    those asked for (None: all), in their order (Flavor.visits_of)."""
    return [
        c for c in ("entry_page", "exit_page", *ENTERED) if attributes is None or c in attributes
    ]


def _latest_before(values: str, name: str, k: int) -> list[str]:
    """ClickHouse columns making `name`: per element of the array `values` (one per event of
    `ix`, 0 for none; those not 0 never decrease), the last one not 0 at an earlier index (0:
    none). A lambda that read `values` at another index would get a copy of it per element,
    so instead the increases of those values (d: where, v: what) are each placed just after
    their own index (o: the order, events at 2i, increases at 2i + 1) and summed in order."""
    d, v, o = f"d{k}", f"v{k}", f"o{k}"
    increases = (
        f"arrayMap((a, b) -> a - b, {v}, arraySlice(arrayPushFront({v}, 0), 1, length({v})))"
    )
    summed = (
        f"arrayCumSum(arraySort((x, p) -> p, arrayConcat({increases}, arrayMap(i -> 0, ix)), {o}))"
    )
    at_events = (
        f"arraySort((g, p) -> p, arrayConcat(arrayMap(i -> 0, {d}), arrayMap(i -> 1, ix)), {o})"
    )
    return [
        f"arrayFilter((i, x) -> x > 0, ix, {values}) AS {d}",
        f"arrayFilter(x -> x > 0, {values}) AS {v}",
        f"arrayConcat(arrayMap(i -> i * 2 + 1, {d}), arrayMap(i -> i * 2, ix)) AS {o}",
        f"arrayFilter((s, g) -> g = 1, {summed}, {at_events}) AS {name}",
    ]


def _within_visits(events: str, visits: str, join: str) -> str:
    """Flavor.within_visits, in the SQL both engines run but for how a join is written."""
    return (
        f"(SELECT * FROM (SELECT *, coalesce(visitor, '') AS visit_key FROM {events} AS e) "
        f"AS e {join} (SELECT coalesce(visitor, '') AS visit_key, timestamp AS visit_began, "
        f"ended AS visit_ended FROM {visits} AS v) AS v USING (visit_key) "
        "WHERE timestamp >= visit_began AND timestamp <= visit_ended)"
    )


class Flavor(Protocol):
    def events(self, project_id: int) -> str:
        """A relation of one project's events, with `person` (the user id, linked ids resolved)."""
        ...

    def rows(self, project_id: int) -> str:
        """One project's stored rows as they are (cheaper than `events` when no one is resolved)."""
        ...

    def presence(self, project_id: int) -> str | None:
        """One project's presence rows (storage/warehouse/schema.py), or None when this
        Warehouse does not keep them: reports then count from the events."""
        ...

    def counts(self, project_id: int) -> str | None:
        """One project's hourly counts (storage/warehouse/schema.py's COUNT_COLUMNS), or None
        when this Warehouse does not keep them: reports then count the presence rows or the
        events."""
        ...

    def kept_visits(self, project_id: int) -> str | None:
        """One project's visits as this Warehouse keeps them (storage/warehouse/schema.py's
        VISIT_COLUMNS), or None when it keeps none: reports then make them (`visits_of`)."""
        ...

    def seen(self, project_id: int) -> str | None:
        """One project's last-seen rows (storage/warehouse/schema.py's SEEN_COLUMNS), or None
        when this Warehouse does not keep them: reports then count people from the events."""
        ...

    def session_hours(self, project_id: int) -> str | None:
        """One project's session hours (storage/warehouse/schema.py's SESSION_HOUR_COLUMNS),
        or None when this Warehouse does not keep them: the sessions report then groups the
        events."""
        ...

    def session_rows(self, project_id: int) -> str | None:
        """One project's session rows (schema.py's SESSION_ROW_COLUMNS: each session's hours
        merged), or None when this Warehouse does not keep them (it then merges the hours)."""
        ...

    def error_hours(self, project_id: int) -> str | None:
        """One project's error hours (storage/warehouse/schema.py's ERROR_COLUMNS), or None
        when this Warehouse does not keep them: the errors report then groups the events."""
        ...

    def visits_of(
        self,
        relation: str,
        gap_seconds: int,
        attributes: Sequence[str] | None = None,
        read_twice: bool = False,
    ) -> str:
        """The visits (VISIT_COLUMNS) of the events `relation` holds: each visitor's events
        with no gap over `gap_seconds`, in order of time, then Log offset. `attributes`: of
        the columns after pageviews (entry and exit page, what the first event had), only
        these (None: all) — each costs its share of the sort. `read_twice`: `relation` is
        cheap to read again (a slice of the events), so what a visit takes from its first
        event may be looked up by that event's offset rather than carried through the sort."""
        ...

    def string(self, value: str) -> str:
        """A string literal."""
        ...

    def timestamp(self, value: datetime) -> str:
        """A literal of the stored timestamps' type, from a naive UTC datetime."""
        ...

    def local(self, column: str, timezone: str) -> str:
        """A stored (naive UTC) timestamp as the naive local time of `timezone`."""
        ...

    def bucket(self, interval: str, local_time: str) -> str:
        """The start of the hour, day, week (Monday) or month a local time falls in."""
        ...

    def prop(self, column: str, key: str) -> str:
        """A top-level member of a JSON column, as text (NULL when absent)."""
        ...

    def matches(self, expression: str, pattern: str) -> str:
        """True when a regular expression (given as a literal) matches somewhere in it."""
        ...

    def contains(self, expression: str, needle: str) -> str:
        """True when the text contains the literal."""
        ...

    def seconds(self, start: str, end: str) -> str:
        """Seconds from one timestamp to another, as a number."""
        ...

    def micros(self, start: str, end: str) -> str:
        """Whole microseconds from one timestamp to another, as an integer (so sums of them
        are exact)."""
        ...

    def same(self, left: str, right: str) -> str:
        """Equal, NULL matching NULL (for joining groups on their dimensions)."""
        ...

    def distinct_list(self, expression: str) -> str:
        """An aggregate: the distinct non-NULL values, sorted, as a list."""
        ...

    def before(self, expression: str, separator: str) -> str:
        """The text before the first `separator` (all of it when there is none)."""
        ...

    def after(self, expression: str, separator: str) -> str:
        """The text after the first `separator` (NULL when there is none)."""
        ...

    def rolling_people(self, relation: str, day: str, days: int) -> str:
        """Per day (k0), the people of `relation` (its `day` column a day's start, and
        `person`) seen on that day or the `days` − 1 before it (`people`): every day on which
        that is not zero, from the first day of `relation` to `days` − 1 days after its last."""
        ...

    def left_join_one(self) -> str:
        """LEFT JOIN where the right side has one row per key (18.16 wants the strictness)."""
        ...

    def cohorts(self, active: str, spans: str | None = None) -> str:
        """Of `active`'s (person, period) rows (a pair may repeat): per cohort (a person's
        first period) and period, how many people — rows (cohort, period, people). `spans`:
        each person's first and last period (person, cohort, last), if known (the same
        answer; an engine may read them instead of grouping `active`)."""
        ...

    def visits(self, relation: str, keys: list[str], gap_seconds: int) -> str:
        """Per group of `keys`: `visits`, `bounces` (visits of one event) and `seconds` (the
        visits' durations, first to last event, summed). A visit is a visitor's events in
        `relation` (which has `visitor`, `timestamp` and the keys) with no gap longer than
        `gap_seconds`, within each key group."""
        ...

    def within_visits(self, events: str, visits: str) -> str:
        """The events of `events` that lie within one of `visits` (a visitor's visits never
        overlap, so each event once), with its `visit_key` (the visitor, '' for none) and
        `visit_began`, `visit_ended`."""
        ...

    def funnel(
        self,
        source: str,
        tests: list[str],
        window_seconds: int,
        strict: bool,
        dropped_at: int | None = None,
    ) -> str:
        """One row: how many people (`person` in `source`, a FROM clause) reached each step
        (r0, r1, …), and `seconds`, the average time from the first step to the last of
        those who reached it (each person's quickest). After a step-0 event, each next step
        is the earliest matching event after the previous one (strict: the very next event),
        within `window_seconds` of the start; events are ordered by timestamp, then Log
        offset, so ties are exact. With `dropped_at` k: instead, one row per person who
        reached step k but not k + 1 (`person`), in order."""
        ...


class DuckDBFlavor:
    def __init__(
        self,
        table: str,
        identities: str,
        presence: Callable[[int], str] | None = None,
        visits: Callable[[int], str] | None = None,
        visible: str = "1 = 1",
        seen: Callable[[int], str] | None = None,
        sessions: Callable[[int], str] | None = None,
        session_rows: Callable[[int], str] | None = None,
        counts: Callable[[int], str] | None = None,
        errors: Callable[[int], str] | None = None,
    ) -> None:
        self.table = table
        self.identities = identities
        self._presence = presence  # a project's presence rows (storage/warehouse/duckdb_rollups.py)
        self._visits = visits  # its visits
        self._seen = seen  # its last-seen rows (storage/warehouse/duckdb_seen.py)
        self._sessions = sessions  # its session hours (storage/warehouse/duckdb_sessions.py)
        self._session_rows = session_rows  # and those merged per session
        self._counts = counts  # its hourly counts (storage/warehouse/duckdb_counts.py)
        self._errors = errors  # its error hours (storage/warehouse/duckdb_errors.py)
        self._visible = visible  # a condition: the events reports read (those the rows count)

    def events(self, project_id: int) -> str:
        return (
            "(SELECT e.*, coalesce(i.user_id, e.user_id, e.anonymous_id) AS person "
            f"FROM {self.table} e LEFT JOIN {self.identities} i ON i.project_id = e.project_id "
            "AND i.alias = coalesce(e.user_id, e.anonymous_id) "
            f"WHERE e.project_id = {int(project_id)} AND {self._visible})"
        )

    def rows(self, project_id: int) -> str:
        return (
            f"(SELECT * FROM {self.table} WHERE project_id = {int(project_id)} AND {self._visible})"
        )

    def presence(self, project_id: int) -> str | None:
        return None if self._presence is None else self._presence(project_id)

    def counts(self, project_id: int) -> str | None:
        return None if self._counts is None else self._counts(project_id)

    def kept_visits(self, project_id: int) -> str | None:
        return None if self._visits is None else self._visits(project_id)

    def seen(self, project_id: int) -> str | None:
        return None if self._seen is None else self._seen(project_id)

    def session_hours(self, project_id: int) -> str | None:
        return None if self._sessions is None else self._sessions(project_id)

    def session_rows(self, project_id: int) -> str | None:
        return None if self._session_rows is None else self._session_rows(project_id)

    def error_hours(self, project_id: int) -> str | None:
        return None if self._errors is None else self._errors(project_id)

    def string(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def timestamp(self, value: datetime) -> str:
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S.%f}'"

    def local(self, column: str, timezone: str) -> str:
        if timezone in ("UTC", "Etc/UTC"):
            return column  # stored times are naive UTC already: no ICU call per row
        return f"timezone({self.string(timezone)}, timezone('UTC', {column}))"

    def bucket(self, interval: str, local_time: str) -> str:
        assert interval in INTERVALS
        return f"date_trunc('{interval}', {local_time})"

    def prop(self, column: str, key: str) -> str:
        path = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"json_extract_string({column}, {self.string(path)})"

    def matches(self, expression: str, pattern: str) -> str:
        return f"regexp_matches({expression}, {pattern})"

    def contains(self, expression: str, needle: str) -> str:
        return f"contains({expression}, {needle})"

    def seconds(self, start: str, end: str) -> str:
        return f"(epoch({end}) - epoch({start}))"

    def micros(self, start: str, end: str) -> str:
        return f"(epoch_us({end}) - epoch_us({start}))"

    def same(self, left: str, right: str) -> str:
        return f"{left} IS NOT DISTINCT FROM {right}"

    def distinct_list(self, expression: str) -> str:
        return f"list_sort(list(DISTINCT {expression}) FILTER (WHERE {expression} IS NOT NULL))"

    def before(self, expression: str, separator: str) -> str:
        return f"split_part({expression}, {self.string(separator)}, 1)"

    def after(self, expression: str, separator: str) -> str:
        sep = self.string(separator)
        return (
            f"CASE WHEN strpos({expression}, {sep}) > 0 "
            f"THEN substr({expression}, strpos({expression}, {sep}) + {len(separator)}) END"
        )

    def rolling_people(self, relation: str, day: str, days: int) -> str:
        # A person's days seen, in order: a day more than `days` after the one before starts
        # a new span; a span covers its first day to its last + days − 1. Spans of one
        # person never touch, so the people of a day are the spans covering it: +1 where a
        # span begins, −1 after it ends, summed over a calendar of the days.
        width = f"INTERVAL {int(days)} DAY"
        seen = f"SELECT DISTINCT {day} AS d, person FROM ({relation}) AS r"
        fresh = (
            "SELECT person, d, CASE WHEN lag(d) OVER (PARTITION BY person ORDER BY d) "
            f">= d - {width} THEN 0 ELSE 1 END AS fresh FROM ({seen}) AS s"
        )
        numbered = (
            "SELECT person, d, sum(fresh) OVER (PARTITION BY person ORDER BY d "
            f"ROWS UNBOUNDED PRECEDING) AS span FROM ({fresh}) AS f"
        )
        spans = (
            f"SELECT min(d) AS began, max(d) + {width} AS ended FROM ({numbered}) AS n "
            "GROUP BY person, span"
        )
        # each once (written inline, the spans were made four times)
        moves = (
            "SELECT k0, sum(move) AS move FROM (SELECT began AS k0, 1 AS move FROM spans "
            "UNION ALL SELECT ended AS k0, -1 AS move FROM spans) AS x GROUP BY k0"
        )
        calendar = (
            "SELECT unnest(generate_series(min(k0), max(k0), INTERVAL 1 DAY)) AS k0 FROM moves"
        )
        per_day = (
            "SELECT c.k0, sum(coalesce(m.move, 0)) OVER (ORDER BY c.k0 ROWS UNBOUNDED PRECEDING) "
            f"AS people FROM ({calendar}) AS c LEFT JOIN moves AS m ON m.k0 = c.k0"
        )
        return (
            f"WITH spans AS MATERIALIZED ({spans}), moves AS MATERIALIZED ({moves}) "
            f"SELECT k0, people FROM ({per_day}) AS p WHERE people > 0"
        )

    def left_join_one(self) -> str:
        return "LEFT JOIN"

    def cohorts(self, active: str, spans: str | None = None) -> str:
        # Most people are active in one period: one pass per person finds their first and
        # last (or `spans` holds them), and only those with a later one are joined with the
        # rows again (at 10 M events, 50,000 of 1.85 M people; a DISTINCT of every pair
        # first cost ~1.5x)
        grouped = (
            "SELECT person, min(period) AS cohort, max(period) AS last "
            f"FROM {active} AS a GROUP BY person"
        )
        return (
            f"WITH c AS MATERIALIZED ({f'SELECT * FROM {spans} AS s' if spans else grouped}) "
            "SELECT cohort, cohort AS period, count(*) AS people FROM c GROUP BY cohort "
            "UNION ALL SELECT cohort, period, count(DISTINCT person) AS people "
            "FROM (SELECT person, cohort FROM c WHERE last > cohort) AS m "
            f"JOIN {active} AS a USING (person) WHERE period > cohort GROUP BY cohort, period"
        )

    def visits(self, relation: str, keys: list[str], gap_seconds: int) -> str:
        # One sort: each event's gaps to the visitor's previous and next event. An event
        # starts a visit when the gap before is missing or too long, ends one likewise after;
        # a visit's duration is the sum of the short gaps inside it. Gaps in whole µs, so
        # the sums are exact.
        window = f"PARTITION BY {', '.join([*keys, 'visitor'])} ORDER BY timestamp"
        gaps = (
            f"SELECT {''.join(f'{k}, ' for k in keys)}"
            f"epoch_us(timestamp) - lag(epoch_us(timestamp)) OVER ({window}) AS before, "
            f"lead(epoch_us(timestamp)) OVER ({window}) - epoch_us(timestamp) AS after "
            f"FROM {relation}"
        )
        longest = int(gap_seconds) * 1_000_000
        starts = f"(before IS NULL OR before > {longest})"
        ends = f"(after IS NULL OR after > {longest})"
        group = f" GROUP BY {', '.join(keys)}" if keys else ""
        return (
            f"SELECT {''.join(f'{k}, ' for k in keys)}"
            f"count(CASE WHEN {starts} THEN 1 END) AS visits, "
            f"count(CASE WHEN {starts} AND {ends} THEN 1 END) AS bounces, "
            f"coalesce(sum(CASE WHEN NOT {ends} THEN after END), 0) / 1000000.0 AS seconds "
            f"FROM ({gaps}) AS gaps{group}"
        )

    def visits_of(
        self,
        relation: str,
        gap_seconds: int,
        attributes: Sequence[str] | None = None,
        read_twice: bool = False,
    ) -> str:
        chosen = _attributes(attributes)
        entered = [c for c in ENTERED if c in chosen]
        # looked up by the first event's offset: a sort carrying all 12 of them cost a
        # roll's visits ~28 ms per 50,000 events against ~22 ms
        later, entered = (entered, []) if read_twice else ([], entered)
        # Two passes over one sort, of the columns a visit needs only (sorting whole events,
        # JSON and all, cost ~2×): an event starts a visit when the gap before it is missing
        # or too long (in whole µs, exact); the starts so far number its visit; `n` orders
        # its events for arg_min (an ORDER BY in each aggregate sorted each group again).
        window = "PARTITION BY project_id, visitor ORDER BY timestamp, log_offset"
        gap = (
            "CASE WHEN epoch_us(timestamp) - lag(epoch_us(timestamp)) OVER (w) <= "
            f"{int(gap_seconds) * 1_000_000} THEN 0 ELSE 1 END"
        )
        needed = ", ".join(["project_id", "visitor", "timestamp", "log_offset", "type", "path",
                            *entered])  # fmt: skip
        starts = (
            f"SELECT {needed}, {gap} AS starts, row_number() OVER (w) AS n "
            f"FROM {relation} AS events WINDOW w AS ({window})"
        )
        numbered = (
            f"SELECT *, sum(starts) OVER ({window} ROWS UNBOUNDED PRECEDING) AS visit "
            f"FROM ({starts}) AS starts"
        )
        page = "CASE WHEN type = 'page' THEN n END"  # NULL: not looked at by arg_min_null
        made = {"entry_page": f"arg_min_null(path, {page})",
                "exit_page": f"arg_max_null(path, {page})"}  # fmt: skip
        values = [
            "min(timestamp) AS timestamp",
            "max(timestamp) AS ended",
            "count(*) AS events",
            "count(CASE WHEN type = 'page' THEN 1 END) AS pageviews",
            *(f"{made.get(c, f'arg_min_null({c}, n)')} AS {c}" for c in chosen if c not in later),
        ]
        visits = (
            f"SELECT project_id, visitor, {', '.join(values)} "
            f"{', min(log_offset) FILTER (WHERE starts = 1) AS first' if later else ''} "
            f"FROM ({numbered}) AS numbered GROUP BY project_id, visitor, visit"
        )
        if not later:
            return visits
        columns = ", ".join(f"v.{c}" if c not in later else f"f.{c}" for c in chosen)
        return (
            "SELECT v.project_id, v.visitor, v.timestamp, v.ended, v.events, v.pageviews, "
            f"{columns} FROM ({visits}) AS v JOIN {relation} AS f ON f.log_offset = v.first"
        )

    def within_visits(self, events: str, visits: str) -> str:
        return _within_visits(events, visits, "JOIN")

    def funnel(
        self,
        source: str,
        tests: list[str],
        window_seconds: int,
        strict: bool,
        dropped_at: int | None = None,
    ) -> str:
        # Each person's events in order (`n`), narrowed once to what the steps read: the
        # person, time, order and which steps each event passes (bit k: step k), so the
        # materialized rows hold no event strings. Each step joins the previous step's
        # reach and carries the time of the event it took, so the quickest way needs no
        # join back. Strict order needs each event's place among the person's (a window's
        # sort); loose order only "later", which the time and then the Log offset say as one
        # number (a HUGEINT: µs since 1970 · 2⁴⁰ + offset), with no sort. (At 10 M events,
        # taking turns with a CTE of every column and a join back: 5–15% less.)
        order = (
            "row_number() OVER (PARTITION BY person ORDER BY timestamp, log_offset)"
            if strict
            else "epoch_us(timestamp)::HUGEINT * 1099511627776 + log_offset"
        )
        flags = " + ".join(
            f"CASE WHEN {test} THEN {1 << k} ELSE 0 END" for k, test in enumerate(tests)
        )
        parts = [
            f"numbered AS (SELECT person, timestamp AS t, {order} AS n, ({flags}) AS f "
            f"FROM {source})"
        ]
        for k in range(len(tests)):
            parts.append(f"s{k} AS (SELECT person, t, n FROM numbered WHERE f & {1 << k} <> 0)")
        parts.append("r0 AS (SELECT person, t AS start, n, t FROM s0)")
        follows = "nxt.n = prev.n + 1" if strict else "nxt.n > prev.n"
        for k in range(1, len(tests)):
            within = f"{self.seconds('prev.start', 'nxt.t')} <= {int(window_seconds)}"
            parts.append(
                f"r{k} AS (SELECT prev.person, prev.start, min(nxt.n) AS n, "
                f"arg_min(nxt.t, nxt.n) AS t FROM r{k - 1} AS prev JOIN s{k} AS nxt "
                f"ON nxt.person = prev.person AND {follows} AND {within} "
                "GROUP BY prev.person, prev.start)"
            )
        if dropped_at is not None:
            k = int(dropped_at)
            return (
                f"WITH {', '.join(parts)} SELECT person FROM (SELECT DISTINCT person FROM r{k} "
                f"EXCEPT SELECT DISTINCT person FROM r{k + 1}) AS dropped ORDER BY person"
            )
        last = len(tests) - 1
        quickest = (
            f"SELECT person, min({self.seconds('start', 't')}) AS secs FROM r{last} GROUP BY person"
        )
        counts = ", ".join(
            f"(SELECT count(DISTINCT person) FROM r{k}) AS r{k}" for k in range(len(tests))
        )
        return (
            f"WITH {', '.join(parts)} SELECT {counts}, "
            f"(SELECT avg(secs) FROM ({quickest}) AS quickest) AS seconds"
        )


class ClickHouseFlavor:
    """ClickHouse's SQL, in the subset 18.16 runs (storage/warehouse/clickhouse.py says why)."""

    def __init__(
        self,
        table: str,
        identities: str,
        presence: Callable[[int], str | None] | None = None,
        counts: Callable[[int], str | None] | None = None,
    ) -> None:
        self.table = table
        self.identities = identities
        # a project's hourly rows (storage/warehouse/clickhouse_hourly.py), or None while
        # they cannot be read
        self._presence = presence
        self._counts = counts

    def events(self, project_id: int) -> str:
        pid = int(project_id)
        return (
            "(SELECT *, if(isNull(linked), coalesce(user_id, anonymous_id), linked) AS person "
            f"FROM (SELECT *, ifNull(user_id, ifNull(anonymous_id, '')) AS who "
            f"FROM {self.table} WHERE project_id = {pid}) "
            f"ANY LEFT JOIN (SELECT alias AS who, user_id AS linked FROM {self.identities} "
            f"WHERE project_id = {pid}) USING who)"
        )

    def rows(self, project_id: int) -> str:
        return f"(SELECT * FROM {self.table} WHERE project_id = {int(project_id)})"

    def presence(self, project_id: int) -> str | None:
        return None if self._presence is None else self._presence(project_id)

    def counts(self, project_id: int) -> str | None:
        return None if self._counts is None else self._counts(project_id)

    def kept_visits(self, project_id: int) -> str | None:
        return None  # likewise

    def seen(self, project_id: int) -> str | None:
        return None  # likewise

    def session_hours(self, project_id: int) -> str | None:
        return None  # likewise

    def session_rows(self, project_id: int) -> str | None:
        return None  # likewise

    def error_hours(self, project_id: int) -> str | None:
        return None  # likewise

    def string(self, value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def timestamp(self, value: datetime) -> str:
        # DateTime holds 1970 to 2105: "all time" (years 1 to 9999) is clamped to it
        clamped = min(max(value, DATETIME_FIRST), DATETIME_LAST)
        return f"toDateTime('{clamped:%Y-%m-%d %H:%M:%S}', 'UTC')"

    def local(self, column: str, timezone: str) -> str:
        if timezone in ("UTC", "Etc/UTC"):
            return column
        return f"toTimeZone({column}, {self.string(timezone)})"

    def bucket(self, interval: str, local_time: str) -> str:
        assert interval in INTERVALS
        if interval == "hour":
            return f"toStartOfHour({local_time})"
        if interval == "day":
            return f"toDateTime(toDate({local_time}), 'UTC')"
        start = "toMonday" if interval == "week" else "toStartOfMonth"
        return f"toDateTime({start}({local_time}), 'UTC')"

    def prop(self, column: str, key: str) -> str:
        k = self.string(key)
        keys, values = f"{column}_keys", f"{column}_values"
        return f"if(has({keys}, {k}), {values}[indexOf({keys}, {k})], NULL)"

    def matches(self, expression: str, pattern: str) -> str:
        return f"match({expression}, {pattern})"

    def contains(self, expression: str, needle: str) -> str:
        return f"(position({expression}, {needle}) > 0)"

    def seconds(self, start: str, end: str) -> str:
        return f"(toInt64({end}) - toInt64({start}))"

    def micros(self, start: str, end: str) -> str:
        return f"((toInt64({end}) - toInt64({start})) * 1000000)"  # whole seconds here

    def same(self, left: str, right: str) -> str:
        return f"((isNull({left}) AND isNull({right})) OR {left} = {right})"

    def distinct_list(self, expression: str) -> str:
        return f"arraySort(groupUniqArray({expression}))"

    def before(self, expression: str, separator: str) -> str:
        sep = self.string(separator)
        return (
            f"substring({expression}, 1, if(position({expression}, {sep}) > 0, "
            f"position({expression}, {sep}), length({expression}) + 1) - 1)"
        )

    def after(self, expression: str, separator: str) -> str:
        sep = self.string(separator)
        return (
            f"if(position({expression}, {sep}) > 0, "
            f"substring({expression}, position({expression}, {sep}) + {len(separator)}), NULL)"
        )

    def rolling_people(self, relation: str, day: str, days: int) -> str:
        # 18.16 has no window functions: each (day, person) counted on its day and the
        # days − 1 after (the day is a local midnight as a UTC DateTime: as a Date it moves
        # by days)
        seen = f"SELECT DISTINCT {day} AS d, person FROM ({relation})"
        later = (
            "SELECT toDateTime(toDate(d) + shift, 'UTC') AS k0, person "
            f"FROM ({seen}) ARRAY JOIN range({int(days)}) AS shift"
        )
        return f"SELECT k0, count(DISTINCT person) AS people FROM ({later}) GROUP BY k0"

    def left_join_one(self) -> str:
        return "ANY LEFT JOIN"

    def cohorts(self, active: str, spans: str | None = None) -> str:
        # no table CTEs in 18.16: each person's periods as an array, its least the cohort
        return (
            "SELECT cohort, p, count() AS people FROM (SELECT groupUniqArray(period) AS ps, "
            f"arrayReduce('min', ps) AS cohort FROM {active} GROUP BY person) "
            "ARRAY JOIN ps AS p GROUP BY cohort, p"
        )

    def visits(self, relation: str, keys: list[str], gap_seconds: int) -> str:
        # Each visitor's times, sorted, in an array: a gap over `gap_seconds` between two
        # neighbours ends a visit; a visit of one event has a long gap (or none) on both sides.
        grouped = ", ".join([*keys, "visitor"])
        long = f"arrayMap(g -> g > {gap_seconds}, arrayPopFront(arrayDifference(ts)))"
        per_visitor = (
            f"SELECT {''.join(f'{k}, ' for k in keys)}"
            f"arraySort(groupArray(toInt64(timestamp))) AS ts, {long} AS long, "
            "arrayPushFront(long, 1) AS starts, arrayPushBack(long, 1) AS ends "
            f"FROM {relation} GROUP BY {grouped}"
        )
        group = f" GROUP BY {', '.join(keys)}" if keys else ""
        return (
            f"SELECT {''.join(f'{k}, ' for k in keys)}"
            "sum(arraySum(starts)) AS visits, "
            "sum(arraySum(arrayMap((s, e) -> s AND e, starts, ends))) AS bounces, "
            f"sum(arraySum(arrayMap(g -> if(g <= {gap_seconds}, g, 0), "
            "arrayPopFront(arrayDifference(ts))))) AS seconds "
            f"FROM ({per_visitor}) AS visitors{group}"
        )

    def visits_of(
        self,
        relation: str,
        gap_seconds: int,
        attributes: Sequence[str] | None = None,
        read_twice: bool = False,
    ) -> str:
        chosen = _attributes(attributes)
        entered = [c for c in ENTERED if c in chosen]
        pages = "entry_page" in chosen or "exit_page" in chosen
        # Each visitor's events, sorted, as arrays (a0 times, a1 offsets, a2 pageview or not,
        # a3 paths, then what a visit takes from its first event); a visit's first event
        # (sf) follows a long gap, its last (sl) precedes one. Every lambda here reads only
        # its own arguments: a lambda that reads another array column gets a copy of it per
        # element, and per-visit slices of the arrays gave each visit a copy of them all —
        # memory grew as visits × events (one busy visitor, 700,000 events at 10 M, went past
        # any limit), as events² for a lambda over the events.
        fields = ["toInt64(timestamp)", "log_offset", "toUInt8(ifNull(type, '') = 'page')",
                  "path" if pages else "''", *entered]  # fmt: skip
        arrays = [f"arrayMap(e -> e.{i + 1}, ev) AS a{i}" for i in range(len(fields))]
        gap = int(gap_seconds)
        # each event's neighbours' times; the first's "previous" a gap before it, the last's
        # "next" a gap after it
        before = f"arrayPushFront(arrayPopBack(a0), a0[1] - {gap} - 1)"
        after = f"arrayPushBack(arrayPopFront(a0), a0[-1] + {gap} + 1)"
        # (sl and cs serve the per-visit arrays below: the middle query outputs only those,
        # as the ARRAY JOIN would copy any other array column once per visit)
        per_visitor = (
            f"SELECT project_id, visitor, {', '.join(arrays)}, "
            f"arrayMap((x, y) -> x - y > {gap}, a0, {before}) AS sf, "
            f"arrayMap((x, y) -> y - x > {gap}, a0, {after}) AS sl, "
            "arrayEnumerate(a0) AS ix, arrayCumSum(a2) AS cs "
            f"FROM (SELECT project_id, visitor, arraySort(groupArray(({', '.join(fields)}))) "
            f"AS ev FROM {relation} GROUP BY project_id, visitor)"
        )
        if pages:
            return self._visits_by_event(per_visitor, chosen, entered)
        # per visit, as arrays in visit order: first and last time, events (last index −
        # first + 1), pageviews (the running count at the last less that before the first)
        firsts = "arrayFilter((x, f) -> f, {}, sf)".format
        lasts = "arrayFilter((x, f) -> f, {}, sl)".format
        per_visit = [
            f"{firsts('a0')} AS vt", f"{lasts('a0')} AS ve",
            f"arrayMap((x, y) -> x - y + 1, {lasts('ix')}, {firsts('ix')}) AS vc",
            f"arrayMap((x, y) -> x - y, {lasts('cs')}, "
            f"{firsts('arrayMap((x, y) -> x - y, cs, a2)')}) AS vp",
            *(f"{firsts(f'a{k}')} AS v{k}" for k in range(4, 4 + len(entered))),
        ]  # fmt: skip
        joined = ", ".join(
            ["vt AS t", "ve AS e", "vc AS c", "vp AS p"]
            + [f"v{k} AS {c}" for k, c in enumerate(entered, start=4)]
        )
        return (
            "SELECT project_id, visitor, toDateTime(t, 'UTC') AS timestamp, "
            "toDateTime(e, 'UTC') AS ended, toInt64(c) AS events, toInt64(p) AS pageviews"
            f"{''.join(f', {c}' for c in entered)} "
            f"FROM (SELECT project_id, visitor, {', '.join(per_visit)} FROM ({per_visitor})) "
            f"ARRAY JOIN {joined}"
        )

    @staticmethod
    def _visits_by_event(per_visitor: str, chosen: list[str], entered: list[str]) -> str:
        """`visits_of` with the entry or exit page (the path of a visit's first or last
        pageview, if it had one): each event a row again with its visit's number (v: the
        first events up to it), grouped per visit."""
        joined = ", ".join(
            ["a0 AS x0", "a2 AS x2", "a3 AS x3", "ix AS i"]
            + [f"a{k} AS x{k}" for k in range(4, 4 + len(entered))]
            + ["arrayCumSum(sf) AS v"]
        )
        # a tuple of each value: argMin leaves out the rows whose value is NULL
        made = {
            "entry_page": "if(sum(x2) > 0, tupleElement(argMinIf(tuple(x3), i, x2 = 1), 1), NULL)",
            "exit_page": "if(sum(x2) > 0, tupleElement(argMaxIf(tuple(x3), i, x2 = 1), 1), NULL)",
        }
        made.update({c: f"tupleElement(argMin(tuple(x{k}), i), 1)" for k, c in
                     enumerate(entered, start=4)})  # fmt: skip
        values = [
            "toDateTime(min(x0), 'UTC') AS timestamp", "toDateTime(max(x0), 'UTC') AS ended",
            "toInt64(count()) AS events", "toInt64(sum(x2)) AS pageviews",
            *(f"{made[c]} AS {c}" for c in chosen),
        ]  # fmt: skip
        return (
            f"SELECT project_id, visitor, {', '.join(values)} "
            f"FROM ({per_visitor}) ARRAY JOIN {joined} GROUP BY project_id, visitor, v"
        )

    def within_visits(self, events: str, visits: str) -> str:
        return _within_visits(events, visits, "ALL INNER JOIN")  # 18.16 wants the strictness

    def funnel(
        self,
        source: str,
        tests: list[str],
        window_seconds: int,
        strict: bool,
        dropped_at: int | None = None,
    ) -> str:
        # Each person's events, sorted, in one array (no window functions or inequality
        # joins in 18.16). Every lambda reads only its own arguments (one that reads another
        # array gets a copy of it per element: a search from each start cost starts × events²
        # and one person of 3,000 starts asked for 128 GiB). Times are seconds + 2⁴⁰, so 0
        # can mean "none" for any time since year -32,000.
        flags = "".join(f", toUInt8(ifNull({t}, 0))" for t in tests)
        per_person = (
            "SELECT person, "
            f"arraySort(groupArray((toInt64(timestamp), log_offset{flags}))) AS ev "
            f"FROM {source} GROUP BY person"
        )
        columns = [
            "arrayMap(e -> e.1 + 1099511627776, ev) AS t",
            "arrayEnumerate(ev) AS ix",
            *(f"arrayMap(e -> e.{k + 3}, ev) AS f{k}" for k in range(len(tests))),
        ]
        window = int(window_seconds)
        last = len(tests) - 1
        if strict:
            # a start reaches step k if the k events after it are steps 1…k, the last within
            # the window: each array shifted k places, so the test reads one element each
            def ahead(array: str, k: int) -> str:
                return f"arrayResize(arraySlice({array}, {k + 1}), length({array}), 0)"

            columns.append("f0 AS c0")
            for k in range(1, len(tests)):
                columns.append(
                    f"arrayMap((c, f, a, b) -> c * f * (a - b <= {window}), c{k - 1}, "
                    f"{ahead(f'f{k}', k)}, {ahead('t', k)}, t) AS c{k}"
                )

            def reached(k: int) -> str:
                return f"arrayExists(x -> x = 1, c{k})"

            took = f"arrayMap((c, a, b) -> if(c = 1, a - b, -1), c{last}, {ahead('t', last)}, t)"
        else:
            # l_k: at each event of step k, the latest start of a chain of steps 0…k that
            # ends there (0: none) — the latest start before it of a chain to step k - 1,
            # if within the window of it (the later the start, the more room). Those starts
            # only grow along the events, so "the latest before" is a running sum of their
            # increases, placed after their events and summed in the order of the events.
            columns.append("arrayMap((x, f) -> x * f, t, f0) AS l0")
            for k in range(1, len(tests)):
                columns += [
                    *_latest_before(f"l{k - 1}", f"m{k}", k),
                    f"arrayMap((m, x, f) -> if(f = 1 AND m > 0 AND x - m <= {window}, m, 0), "
                    f"m{k}, t, f{k}) AS l{k}",
                ]

            def reached(k: int) -> str:
                return f"arrayExists(x -> x > 0, l{k})"

            took = f"arrayMap((x, m) -> if(m > 0, x - m, -1), t, l{last})"
        # each person's quickest: from a start to its last step, of the chains that got there
        columns.append(f"arrayReduce('min', arrayFilter(d -> d >= 0, {took})) AS quickest")
        stepped = f"(SELECT person, {', '.join(columns)} FROM ({per_person}))"
        if dropped_at is not None:
            k = int(dropped_at)
            return (
                f"SELECT person FROM {stepped} WHERE {reached(k)} AND NOT {reached(k + 1)} "
                "ORDER BY person"
            )
        counts = ", ".join(f"sum({reached(k)}) AS r{k}" for k in range(len(tests)))
        return f"SELECT {counts}, avgIf(quickest, {reached(last)}) AS seconds FROM {stepped}"
