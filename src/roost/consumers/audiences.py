"""Audiences kept up to date: a consumer of the Log that counts the events each audience's
behaviour conditions look at, per id and UTC day, and decides again whether a person is in
an audience whenever something about them changed — an event counted, an identify, alias or
group call — or a day of their counts went out of a window (storage/metadata/audiences.py).

Incremental: an event is read once and counted into day buckets; "performed X at least N
times in D days" is then a sum over at most D rows, never a scan of the events. It follows
the profiles consumer (never past its cursor), so the traits it reads are those the events
it has counted led to. A new or changed audience is backfilled from the Warehouse (its counts
up to the Warehouse's loaded offset, counting in the Log after that) and everyone seen is
decided; one removed has its members exit. A person is a user id with the ids linked to it
(the profiles' links), or an id not linked to one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.engine import Connection

from roost.consumers.follower import Follower
from roost.consumers.profiles import Source
from roost.storage.log import Group
from roost.storage.metadata import replace_row
from roost.storage.metadata.audiences import Audience, AudienceStore, Condition, counted
from roost.storage.metadata.profiles import ProfileStore, cursors
from roost.storage.warehouse import Warehouse

NAME = "audiences"
SAVE_IDLE_SECONDS = 1.0  # with no audience anywhere the cursor is saved at most this often
BACKFILL_ROWS = 5_000_000  # counts a backfill may read from the Warehouse (id × day rows)


class Seen(msgspec.Struct):
    """The fields of an Event audiences use; properties left raw until a condition asks."""

    project_id: int
    type: str
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    timestamp: datetime | None = None
    properties: msgspec.Raw = msgspec.Raw(b"{}")


_decode_group = msgspec.json.Decoder(list[Seen]).decode
_decode_properties = msgspec.json.Decoder(dict[str, Any]).decode


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def as_text(value: Any) -> str:
    """A property value as both sides compare it: a string as it is, anything else as JSON
    (what the Warehouse's JSON functions give for it)."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def matches(condition: Condition, event: str | None, properties: dict[str, Any]) -> bool:
    if event != condition.name:
        return False
    return all(k in properties and as_text(properties[k]) == as_text(v) for k, v in condition.where)


class AudiencesConsumer(Follower):
    name = "roost-audiences"

    def __init__(
        self,
        source: Source,
        store: AudienceStore,
        profiles: ProfileStore,
        definitions: Callable[[], dict[int, list[Audience]]],
        *,
        follows: Callable[[], int],
        warehouse: Warehouse | None = None,
        clock: Callable[[], datetime] = utcnow,
        batch_events: int = 20000,
        interval: float = 1.0,
    ) -> None:
        super().__init__(interval)
        self.source = source
        self.store = store
        self.profiles = profiles
        self.definitions = definitions
        self.follows = follows  # the profiles consumer's offset: never past it
        self.warehouse = warehouse
        self.clock = clock
        self.batch_events = batch_events
        self.offset = profiles.cursor(NAME)
        self._swept: date | None = None
        self._synced: dict[int, list[Audience]] = {}
        self.announced: Callable[[], None] | None = None  # entries or exits were written
        self._wrote = self._retired = False
        self._idle = False  # no audience anywhere, none counted: a step asks the store nothing
        self._saved_at = float("-inf")
        self._lock = threading.Lock()

    def position(self) -> int:
        """Behind everything while a definition it has not counted for is waiting: a reader
        after a new or changed audience waits for its backfill."""
        if {p: a for p, a in self.definitions().items() if a} != self._synced:
            return -1
        return self.offset

    def step(self) -> None:
        self.catch_up()

    def finish(self) -> None:
        self.catch_up()

    def catch_up(self) -> int:
        before = self.offset
        with self._lock:
            defined = {p: a for p, a in self.definitions().items() if a}
            if (defined or not self._idle) and self._sync(defined):
                self._synced = defined
                self._idle = not defined  # none defined, none left to retire: nothing to ask
            target = min(self.source.last_offset(), self.follows())
            if not defined and self.offset < target:  # no audience anywhere: nothing to read
                if time.monotonic() - self._saved_at >= SAVE_IDLE_SECONDS:  # not every read's
                    with self.profiles.engine.begin() as conn:
                        replace_row(conn, cursors, consumer=NAME, log_offset=target)
                    self._saved_at = time.monotonic()
                self.offset = target
            while self.offset < target:
                groups = [g for g in self.source.read_groups(self.offset, self.batch_events)
                          if g[0] <= target]  # fmt: skip
                if not groups:
                    break
                seen = sum(min(f + n - 1, target) - max(f - 1, self.offset) for f, n, _ in groups)
                up_to = groups[-1][0] + groups[-1][1] - 1 if seen >= self.batch_events else target
                self._apply(groups, min(up_to, target), defined)
            today = self.clock().date()
            if self._swept != today:
                self._sweep(defined, today)
                self._swept = today
        if self._wrote or self._retired:
            self._wrote = self._retired = False
            if self.announced is not None:
                self.announced()
        return self.offset - before

    # definitions: backfill the new and changed, retire the removed

    def _sync(self, defined: dict[int, list[Audience]]) -> bool:
        """True when every audience is counted for as defined (a backfill may have to wait
        for the Warehouse)."""
        with self.profiles.engine.connect() as conn:
            known = {p: self.store.counted_for(conn, p) for p in {*defined, *self._projects(conn)}}
        done = True
        for project_id, had in known.items():
            wanted = {a.name: a for a in defined.get(project_id, [])}
            for name in had.keys() - wanted.keys():
                with self.profiles.engine.begin() as conn:
                    self.store.restart(conn, project_id, name, 0)
                    self.store.exit_all(conn, project_id, name, self.clock())
                self._retired = True
            for name, audience in wanted.items():
                if had.get(name, ("", 0))[0] != audience.definition():
                    done = self._backfill(project_id, audience) and done
        return done

    def _projects(self, conn: Connection) -> list[int]:
        return [int(r[0]) for r in conn.execute(counted.select().with_only_columns(
            counted.c.project_id).distinct()).all()]  # fmt: skip

    def _backfill(self, project_id: int, audience: Audience) -> bool:
        """The audience's counts from the Warehouse up to what it has loaded (at least this
        consumer's offset: the Log after it is counted here), then everyone decided."""
        after = self.offset
        adds: dict[tuple[str, int, str, date], int] = {}
        everyone: set[str] = set()
        if self.warehouse is not None:
            after = self.warehouse.loaded_offset()
            if after < self.offset:
                return False  # the Warehouse has not loaded what this consumer passed yet
            flavor = self.warehouse.flavor
            rows = flavor.rows(project_id)
            who = "coalesce(user_id, anonymous_id)"
            today = self.clock().date()
            for k, condition in enumerate(audience.conditions):
                if not condition.counted:
                    continue
                since = datetime.combine(today - timedelta(days=condition.within_days - 1),
                                         datetime.min.time())  # fmt: skip
                tests = [f"event = {flavor.string(condition.name)}",
                         f"timestamp >= {flavor.timestamp(since)}",
                         f"log_offset <= {int(after)}", f"{who} IS NOT NULL"]  # fmt: skip
                tests += [f"{flavor.prop('properties', key)} = {flavor.string(as_text(value))}"
                          for key, value in condition.where]  # fmt: skip
                sql = (f"SELECT {who} AS who, {flavor.bucket('day', 'timestamp')} AS day, "
                       f"count(*) AS n FROM {rows} AS e WHERE {' AND '.join(tests)} "
                       "GROUP BY who, day")  # fmt: skip
                found = self.warehouse.report(sql, timeout=300, max_rows=BACKFILL_ROWS)
                for who_id, day, n in found.rows:
                    adds[(audience.name, k, str(who_id), _day(day))] = int(n)
            ids = self.warehouse.report(
                f"SELECT DISTINCT {who} AS who FROM {rows} AS e WHERE log_offset <= {int(after)} "
                f"AND {who} IS NOT NULL", timeout=300, max_rows=BACKFILL_ROWS,
            )  # fmt: skip
            everyone = {str(r[0]) for r in ids.rows}
        with self.profiles.engine.begin() as conn:
            self.store.restart(conn, project_id, audience, after)
            self.store.add(conn, project_id, adds)
            self.store.see(conn, project_id, everyone)
            everyone |= set(self.store.everyone(conn, project_id))
            self._decide(conn, project_id, [audience], everyone)
        return True

    # the Log: count, note who changed, decide again

    def _apply(
        self, groups: Sequence[Group], up_to: int, defined: dict[int, list[Audience]]
    ) -> None:
        adds: dict[int, dict[tuple[str, int, str, date], int]] = {}
        changed: dict[int, set[str]] = {}
        regrouped: dict[int, set[str]] = {}  # groups whose traits a group call may have changed
        with self.profiles.engine.connect() as conn:
            after = {p: self.store.counted_for(conn, p) for p in defined}
        for first, _, blob in groups:
            for i, e in enumerate(_decode_group(blob)):
                offset = first + i
                if not self.offset < offset <= up_to:
                    continue
                audiences = defined.get(e.project_id)
                if not audiences:
                    continue
                who = e.user_id or e.anonymous_id
                touched = changed.setdefault(e.project_id, set())
                if who:
                    touched.add(who)
                if e.type in ("identify", "alias", "group"):
                    touched.update(x for x in (e.anonymous_id, e.previous_id) if x)
                if e.type == "group" and e.group_id:
                    regrouped.setdefault(e.project_id, set()).add(e.group_id)
                if not who or e.timestamp is None:
                    continue
                properties: dict[str, Any] | None = None
                for audience in audiences:
                    counted = after[e.project_id].get(audience.name)
                    if counted is None or offset <= counted[1]:
                        continue  # not backfilled yet, or its backfill counted this event
                    for k, condition in enumerate(audience.conditions):
                        if not condition.counted or e.event != condition.name:
                            continue
                        if condition.where and properties is None:
                            properties = _decode_properties(e.properties)
                        if matches(condition, e.event, properties or {}):
                            key = (audience.name, k, who, e.timestamp.date())
                            project_adds = adds.setdefault(e.project_id, {})
                            project_adds[key] = project_adds.get(key, 0) + 1
        with self.profiles.engine.begin() as conn:
            for project_id, ids in changed.items():
                for group in regrouped.get(project_id, ()):
                    ids |= set(self.profiles.members_of(conn, project_id, group))
                self.store.add(conn, project_id, adds.get(project_id, {}))
                self.store.see(conn, project_id, ids)
                ready = [a for a in defined[project_id] if a.name in after[project_id]]
                self._decide(conn, project_id, ready, ids)
            replace_row(conn, cursors, consumer=NAME, log_offset=up_to)
        self.offset = up_to

    def _sweep(self, defined: dict[int, list[Audience]], today: date) -> None:
        """Counts a window no longer reaches go; whoever had them is decided again (someone
        who stopped buying leaves "bought in 30 days"; someone who stopped churning enters
        "did not churn in 90")."""
        with self.profiles.engine.begin() as conn:
            for project_id, audiences in defined.items():
                ids: set[str] = set()
                for audience in audiences:
                    for k, condition in enumerate(audience.conditions):
                        if condition.counted:
                            start = today - timedelta(days=condition.within_days - 1)
                            ids |= set(
                                self.store.expiring(conn, project_id, audience.name, k, start)
                            )
                if ids:
                    self._decide(conn, project_id, audiences, ids)

    def _decide(self, conn: Connection, project_id: int, audiences: Sequence[Audience],
                ids: set[str]) -> None:  # fmt: skip
        """Whether each person these ids are (or were) is in each audience; entered and
        exited as it changed. An id linked to a user is no person of its own any more."""
        now = self.clock()
        today = now.date()
        people: set[str] = set()
        for who in ids:
            person = self.profiles.resolve(conn, project_id, who)
            people.add(person or who)
            if person and person != who:
                for audience in audiences:  # the id merged into a user: not a member itself
                    if self.store.current(conn, project_id, audience.name, who):
                        self.store.exit(conn, project_id, audience.name, who, now)
        for person in sorted(people):
            linked = [person, *self.profiles.aliases_of(conn, project_id, person)]
            profile = self.profiles.profile(conn, project_id, person)
            traits = profile.traits if profile else {}
            groups = [self.profiles.group(conn, project_id, g) or {}
                      for g in self.profiles.groups_of(conn, project_id, person)]  # fmt: skip
            for audience in audiences:
                inside = all(self._holds(conn, project_id, audience, k, c, linked, traits, groups, today)
                             for k, c in enumerate(audience.conditions))  # fmt: skip
                was = self.store.current(conn, project_id, audience.name, person)
                if inside and not was:
                    self.store.enter(conn, project_id, audience.name, person, now)
                    self._wrote = True
                elif was and not inside:
                    self.store.exit(conn, project_id, audience.name, person, now)
                    self._wrote = True

    def _holds(self, conn: Connection, project_id: int, audience: Audience, k: int,
               condition: Condition, linked: list[str], traits: dict[str, Any],
               groups: list[dict[str, Any]], today: date) -> bool:  # fmt: skip
        if condition.kind == "trait":
            return condition.holds(traits)
        if condition.kind == "group_trait":
            return any(condition.holds(g) for g in groups)
        since = today - timedelta(days=condition.within_days - 1)
        n = self.store.count(conn, project_id, audience.name, k, linked, since)
        return n >= condition.at_least if condition.kind == "performed" else n == 0


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
