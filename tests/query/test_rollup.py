"""Reports read from presence rows answer exactly what the same reports counted from the
events answer: on generated traffic loaded in many loads (so an hour's rows come in pieces),
with late events, across a DST change, after identity links change and after erasures (of a
user, and of a time range that starts and ends mid-hour), in time zones where a UTC hour is a
local hour and where it is not (Asia/Kolkata: the events are counted)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from roost.model import Event
from roost.query import rollup
from roost.query.reports import REPORTS
from roost.storage.warehouse import clickhouse_hourly, duckdb_rollups, duckdb_seen
from roost.storage.warehouse import duckdb as storage_duckdb
from roost.storage.warehouse.duckdb import DuckDBWarehouse
from roost.storage.warehouse.flavor import DuckDBFlavor, Flavor
from roost.storage.warehouse.schema import (
    COUNT_KEYS,
    PRESENCE_KEYS,
    SESSION_MERGED,
    VISIT_COLUMNS,
)
from roost.web.dashboard.pages import PANELS
from tests.conftest import Env

RANGE = ["2024-03-29", "2024-04-02"]  # Europe's clocks went forward on 31 March
AHEAD = ["2024-03-29", "2030-12-31"]  # a range that ends after it is asked
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
# each ask, and what it reads beside the events: events and pageviews alone by the hourly
# counts; users and visitors per time bucket, in a range that ends after it was asked, by the
# last-seen rows' first and last times too
BODIES: list[tuple[dict[str, Any], str]] = [
    # users, visitors and sessions in all: by the last-seen rows, in any range
    ({"metrics": ["events", "users", "visitors", "pageviews", "sessions"]}, "counts seen"),
    # events and pageviews beside people: from the hourly counts, a part of their own
    ({"metrics": ["events", "users"], "interval": "hour"}, "presence counts"),
    ({"metrics": ["visitors", "pageviews"], "interval": "day"}, "presence counts"),
    ({"metrics": ["users", "sessions"], "interval": "week"}, "presence"),
    ({"metrics": ["events"], "interval": "month"}, "counts"),
    ({"metrics": ["events"], "dimensions": ["type"]}, "counts"),
    ({"metrics": ["events", "pageviews"], "dimensions": ["event", "page"], "interval": "day",
      "filters": [["is_not", "device", ["Mobile"]], ["contains", "browser", ["Fire"]]]}, "counts"),
    ({"metrics": ["visitors"], "dimensions": ["browser"], "filters": [["is", "type", ["page"]]]},
     "counts seen"),
    ({"metrics": ["visitors"], "dimensions": ["browser"], "filters": [["is", "type", ["track"]]]},
     "presence"),
    ({"metrics": ["users", "events"], "dimensions": ["os", "device"]}, "presence counts"),
    ({"metrics": ["events", "sessions"], "dimensions": ["user"], "order_by": [["user", "asc"]]},
     "presence"),
    ({"metrics": ["visitors"], "dimensions": ["user"], "limit": 3, "page": 2}, "presence"),
    ({"metrics": ["events"], "dimensions": ["session", "time:day"]}, "presence"),
    ({"metrics": ["users"], "filters": [["is_not", "browser", ["Chrome"]]]}, "presence"),
    ({"metrics": ["events", "visitors"], "filters": [["not", ["is", "type", ["track"]]]]},
     "presence counts"),
    ({"metrics": ["events"], "filters": [["or", [["contains", "os", ["Win"]],
                                                 ["matches", "user", ["^u"]]]]]}, "presence"),
    ({"metrics": ["events"], "filters": [["or", [["contains", "os", ["Win"]],
                                                 ["matches", "event", ["^P"]]]]]}, "counts"),
    ({"metrics": ["users", "pageviews"], "date_range": "all", "interval": "day"},
     "presence counts seen"),
    # the range cuts March: someone seen in March only, before it, is no one of it
    ({"metrics": ["users"], "interval": "month", "date_range": ["2024-03-30", "2030-12-31"]},
     "presence counts seen"),
    ({"metrics": ["visitors", "events"], "interval": "week",
      "date_range": ["2024-03-29", "2030-12-31"]}, "presence counts seen"),
]  # fmt: skip
WEB_TOTALS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]
VISITS: list[tuple[dict[str, Any], str]] = [  # read from the visits kept
    ({"metrics": WEB_TOTALS}, "counts visits seen"),  # (visitors from the last-seen rows)
    ({"metrics": ["visits", "bounce_rate", "visit_duration"], "interval": "hour"},
     "counts visits"),
    ({"metrics": ["visits", "views_per_visit", "visit_duration"], "interval": "day"},
     "counts visits"),
    ({"metrics": ["visits", "bounce_rate"], "interval": "week", "date_range": "all"},
     "counts visits"),
    # begun within a range that starts amid the traffic (made from the events a gap before it)
    ({"metrics": ["visits", "visit_duration"], "interval": "hour",
      "date_range": ["2024-03-30", "2024-03-31"]}, "counts visits"),
    # the dashboard's entry and exit pages: of the visits with a pageview
    (PANELS["entry-pages"][1], "visits"),
    (PANELS["exit-pages"][1], "visits"),
]  # fmt: skip


ASKS: list[tuple[str, dict[str, Any], str]] = [  # what each reads beside the events
    # users and visitors per time bucket: also by the last-seen rows' first and last times
    *(("query", body, reads) for body, reads in BODIES),
    *(("query", body, reads) for body, reads in VISITS),
    # a visit cut by a filter or a breakdown is counted from the events
    ("query", {"metrics": ["visits", "visit_duration"], "dimensions": ["browser"]}, "counts"),
    ("query", {"metrics": ["visits", "bounce_rate"], "filters": [["is", "type", ["page"]]]},
     "counts"),
    ("query", {"metrics": ["session_duration", "visitors"], "interval": "day"}, "presence"),
    # by visit dimensions: whole visits, in any zone
    ("query", {"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
               "dimensions": ["entry_page"]}, "visits"),
    ("query", {"metrics": ["visits", "events"], "dimensions": ["visit:browser", "time:day"],
               "filters": [["is_not", "exit_page", ["/p1"]]]}, "visits"),
    ("query", {"metrics": ["visits", "conversion_rate"], "dimensions": ["entry_page"],
               "filters": [["is", "event", ["Buy"]]]}, "visits"),
    # filtered by their visits: the events of the matching ones
    ("query", {"metrics": ["events", "visitors", "visits"], "dimensions": ["type"],
               "filters": [["is", "visit:browser", ["Chrome"]]]}, "visits"),
    ("retention", {"period": "day", "filters": [["is", "visit:os", ["iOS"]]]}, "visits"),
    # people and visitors by the last-seen rows, in any range: those seen before and after it
    # looked for among its events (test_those_last_seen_after_the_range_count_for_what_they_did_
    # in_it, test_a_range_that_ended_counts_by_the_first_and_last_times_and_looks_up_the_rest)
    ("query", {"metrics": ["events", "users"], "dimensions": ["event"], "date_range": AHEAD},
     "counts seen"),
    ("query", {"metrics": ["users"], "dimensions": ["event"], "date_range": "all"},
     "counts seen"),
    ("query", {"metrics": ["users", "events"], "dimensions": ["event:name"],
               "date_range": ["2024-03-30", "2024-03-31"], "limit": 2}, "counts seen"),
    ("query", {"metrics": ["users", "visitors", "events", "sessions"], "date_range": AHEAD},
     "counts seen"),
    # sessions too (a count of rows, where the events' is a distinct count of every session)
    ("query", {"metrics": ["sessions"], "date_range": "all"}, "counts seen"),
    # each person's events in all time (the dashboard's people), and no one's beside them
    ("query", {"metrics": ["events"], "dimensions": ["user"], "date_range": "all",
               "filters": [["is_not", "user", ["u1"]]]}, "presence seen"),
    ("query", {"metrics": ["events"], "dimensions": ["user"], "date_range": "all",
               "filters": [["is", "type", ["page"]]]}, "presence"),
    ("query", {"metrics": ["sessions"], "date_range": AHEAD}, "counts seen"),
    ("query", {"metrics": WEB_TOTALS, "date_range": "all"}, "counts visits seen"),
    ("query", {"metrics": ["users", "visitors"], "dimensions": ["event"], "date_range": AHEAD,
               "filters": [["is", "event", ["Buy"]]]}, ""),
    # visitors per page viewed: the dashboard's top pages (by any event: from the events)
    ("query", {"metrics": ["pageviews", "visitors"], "dimensions": ["page"], "date_range": AHEAD,
               "filters": [["is", "type", ["page"]]]}, "counts seen"),
    ("query", {"metrics": ["visitors"], "dimensions": ["event:page"], "date_range": "all",
               "filters": [["is", "type", ["page"]]], "limit": 3}, "counts seen"),
    ("query", {"metrics": ["visitors", "users"], "dimensions": ["page"], "date_range": "all",
               "filters": [["is", "type", ["page"]]]}, "seen"),
    ("query", {"metrics": ["visitors"], "dimensions": ["page"], "date_range": "all"}, ""),
    # conversion rate: its whole (the visitors without the goal) by the last-seen rows too
    ("query", {"metrics": ["conversion_rate"], "filters": [["is", "event", ["Buy"]]]}, "seen"),
    ("query", {"metrics": ["conversion_rate", "visitors"], "dimensions": ["browser"],
               "filters": [["is", "event", ["Buy", "Play"]], ["is", "type", ["page"]]],
               "date_range": AHEAD}, "seen"),
    ("query", {"metrics": ["conversion_rate"], "dimensions": ["os"],
               "filters": [["is", "event", ["Buy"]]]}, ""),
    *(("query", {"metrics": ["visitors"], "dimensions": [column], "date_range": AHEAD,
                 "filters": [["is", "type", ["page"]]]}, "counts seen")
      for column in ("country", "browser", "os", "device")),
    ("query", {"metrics": ["visitors"], "dimensions": ["page"], "date_range": "all",
               "filters": [["is", "type", ["track"]]]}, ""),
    # any event: each person's first and last period by their last-seen rows, theirs whose
    # first and last times lie in the range; the others' by their presence rows
    ("retention", {"period": "day", "periods": 4}, "presence seen"),
    ("retention", {"period": "day", "periods": 2, "date_range": ["2024-03-30", "2024-03-31"]},
     "presence seen"),
    ("retention", {"period": "week", "periods": 2, "date_range": AHEAD}, "presence seen"),
    ("retention", {"period": "day", "filters": [["is", "type", ["page"]]]}, "presence"),
    # any event in all time: each person's first and last period by their last-seen rows
    ("retention", {"period": "week", "date_range": "all"}, "presence seen"),
    ("retention", {"period": "month", "date_range": "all", "periods": 2}, "presence seen"),
    ("retention", {"period": "day", "date_range": "all", "start": ["is", "type", ["page"]]},
     "presence"),
    ("retention", {"period": "day", "start": ["is", "type", ["identify"]],
                   "return": ["is", "type", ["page"]], "filters": [["is", "os", ["iOS"]]]},
     "presence"),
    ("retention", {"period": "day", "start": ["is", "event", ["Buy"]]}, ""),
    # players: who had a game event (presence rows keep its category); the new ones by the
    # first times of the players' last-seen rows (unless filtered), and in a range that ends
    # after it was asked, the players too
    ("players", {}, "presence seen"),
    ("players", {"by": ["time:day"]}, "presence seen"),
    ("players", {"by": ["time:week"], "date_range": AHEAD}, "presence seen"),
    ("players", {"by": ["time:hour"], "filters": [["is", "os", ["iOS"]]]}, "presence"),
    ("players", {"by": ["build"]}, "seen"),
    ("players", {"date_range": AHEAD}, "presence seen"),
    ("players", {"date_range": "all"}, "seen"),
    ("players", {"date_range": AHEAD, "filters": [["is", "build", ["1.0"]]]}, ""),
    # game sessions: from their rows, and their hours' rows in a range that cuts them, by
    # time in any zone (a session's own start)
    ("sessions", {}, "session_hours session_rows"),
    ("sessions", {"by": ["time:day"]}, "session_hours session_rows"),
    ("sessions", {"by": ["build", "time:hour"], "date_range": "all"}, "session_rows"),  # none cut
    ("sessions", {"by": ["dim1"], "date_range": ["2024-03-30", "2024-03-30"]},
     "session_hours session_rows"),
    ("sessions", {"filters": [["is", "build", ["1.1"]]]}, ""),  # a filter picks events
    # players per run and resource: by their last-seen rows (the counts of the range's events,
    # the players seen before and after it among them)
    # (their events per name from the hourly counts: a resource's of positive values)
    ("runs", {"date_range": AHEAD}, "counts seen"),
    ("resources", {"date_range": "all"}, "counts seen"),
    ("resources", {"date_range": AHEAD}, "counts seen"),
    ("runs", {}, "counts seen"),
    ("runs", {"date_range": ["2024-03-30", "2024-03-31"]}, "counts seen"),
    ("query", {"metrics": ["users"], "dimensions": ["event"], "date_range": AHEAD,
               "filters": [["is", "category", ["progression"]]]}, ""),  # names, not runs
    ("runs", {"by": ["build"], "date_range": AHEAD}, ""),
    ("resources", {"date_range": AHEAD, "filters": [["is", "build", ["1.0"]]]}, ""),
    # players per error signature: by their last-seen rows likewise (the rest of the events);
    # occurrences, names, builds and times by the error hours, in a range of whole hours
    ("errors", {"date_range": AHEAD}, "seen error_hours"),
    ("errors", {"date_range": "all"}, "seen error_hours"),
    ("errors", {}, "seen error_hours"),
    ("errors", {"date_range": ["2024-03-30", "2024-03-31"]}, "seen error_hours"),
    ("errors", {"by": ["build"], "date_range": AHEAD}, ""),
    ("errors", {"date_range": AHEAD, "filters": [["is", "os", ["iOS"]]]}, ""),
]  # fmt: skip


class EventsOnly:
    """A Warehouse's flavour without rollups: reports count from the events."""

    def __init__(self, flavor: Flavor) -> None:
        self._flavor = flavor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._flavor, name)

    def presence(self, project_id: int) -> None:
        return None

    def counts(self, project_id: int) -> None:
        return None

    def kept_visits(self, project_id: int) -> None:
        return None

    def seen(self, project_id: int) -> None:
        return None

    def session_hours(self, project_id: int) -> None:
        return None

    def session_rows(self, project_id: int) -> None:
        return None

    def error_hours(self, project_id: int) -> None:
        return None


def traffic(rng: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    """n events of 14 people over four days, in no order of time."""
    events = []
    for i in range(start, start + n):
        k = rng.randrange(14)
        moment = datetime(2024, 3, 29, tzinfo=UTC).timestamp() + rng.uniform(0, 4 * 86400)
        event: dict[str, Any] = {
            "type": rng.choice(["page", "page", "track", "identify"]),
            "anonymousId": f"a{k}",
            "messageId": f"m{i}",
            "timestamp": datetime.fromtimestamp(moment, UTC).isoformat(),
            "context": {
                "ip": f"198.51.100.{k % 5}",
                "userAgent": AGENTS[k % len(AGENTS)],
                "page": {"url": f"https://shop.example/p{rng.randrange(4)}"},
            },
        }
        if k % 3 == 0:
            event["userId"] = f"u{k}"
        if rng.random() < 0.7:
            event["context"]["sessionId"] = f"s{k}-{rng.randrange(3)}"
        if event["type"] == "track":
            event["event"] = rng.choice(["Play", "Buy"])
        events.append(event)
    return events


def player(k: int) -> str:
    return f"p{k}".ljust(32, "0")


def day(k: int, moment: float) -> int:
    return int(moment // 86400) if k < 2 else 0


def played(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """n game events of 6 players (their hashes `player(k)`) over the four days and the week
    before, in no order of time; players 0 and 1 play a session a day (which a range may hold
    whole), the others one in all."""
    events = []
    for _ in range(n):
        k = rng.randrange(6)
        moment = datetime(2024, 3, 22, tzinfo=UTC).timestamp() + rng.uniform(0, 11 * 86400)
        kind, name = rng.choice([("session", "Session:Start"), ("session", "Session:End"),
                                 ("progression", "Start:Run"), ("progression", "Fail:Boss"),
                                 ("resource", "Source:Gold"), ("resource", "Sink:Gold"),
                                 ("resource", "Sink:Gems"), ("design", "Click:Menu"),
                                 ("error", "NullReference"), ("error", "Timeout")])  # fmt: skip
        if kind == "resource" and k == 5 and rng.random() < 0.5:
            name = "Source:Dust"  # moved by no one: no resource of the report
        events.append({
            "build_version": rng.choice(["1.0", "1.1"]), "player_hash": player(k),
            "session_id": f"6f1c2d3e-0000-4000-8000-{k:04x}{day(k, moment):08x}",
            "type": kind, "name": name,
            "ts": datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z"),
            # player 5 moves no resource (counts for none: the other players' do)
            **({"value": 0 if k == 5 else rng.choice([0, 5, 12.5])} if kind == "resource"
               else {}),
            # an error's signature, if it has one, groups it (a name may have several)
            **({"data": {"signature": rng.choice(["s1", "s2", name])}}
               if kind == "error" and rng.random() < 0.7 else {}),
        })  # fmt: skip
    return events


def send(env: Env, events: list[dict[str, Any]]) -> None:
    response = env.client.post(
        "/v1/batch", json={"batch": events}, headers={"X-Write-Key": env.write_key}
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def asked(env: Env, kind: str, body: dict[str, Any]) -> Any:
    response = env.client.post(
        REPORTS[kind].path, json=body, headers={"Authorization": f"Bearer {env.read_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def counted(env: Env, kind: str, body: dict[str, Any]) -> Any:
    """The same report counted from the events."""
    report = REPORTS[kind]
    parsed = report.parse(body, datetime.now(UTC))
    warehouse = env.runtime.warehouse
    project = env.runtime.metadata.project("default").id
    sql = report.build(parsed, project, EventsOnly(warehouse.flavor))
    return report.shape(parsed, warehouse.report(sql, timeout=30, max_rows=10000))


def same_answers(env: Env) -> None:
    """Every ask in every zone: the API's answer is the events'; and each read what it
    should (on a Warehouse that keeps rollups, in a zone whose hours are UTC hours)."""
    project = env.runtime.metadata.project("default").id
    warehouse = env.runtime.warehouse
    flavor = warehouse.flavor
    keeps = isinstance(flavor, DuckDBFlavor)  # every rollup; ClickHouse its hourly rows
    db = "roost" if keeps else warehouse.db
    clickhouse_read: set[str] = set()
    for zone in ZONES:
        for kind, body, expected in ASKS:
            body = {"date_range": RANGE, **body, "timezone": zone}
            report = REPORTS[kind]
            sql = report.build(report.parse(body, datetime.now(UTC)), project, flavor)
            kept = (
                "presence",
                "counts",
                "visits",
                "seen",
                "session_hours",
                "session_rows",
                "error_hours",
            )
            read = [t for t in kept if f"{db}.{t} " in sql]
            hourly = zone != "Asia/Kolkata"  # visits and last times: in any zone
            # session hours: a range of whole UTC hours (all time, or local days that are)
            whole = zone != "Asia/Kolkata" or body["date_range"] == "all"
            local = {"presence": hourly, "counts": hourly, "session_hours": whole,
                     "error_hours": whole,
                     "session_rows": whole}  # fmt: skip
            wanted = [t for t in expected.split() if local.get(t, True)]
            if keeps:
                assert read == wanted, (zone, kind, body)
            else:  # hourly rows alone, where DuckDB reads some (or last-seen rows instead)
                assert set(read) <= {"presence", "counts"}, (zone, kind, body)
                clickhouse_read.update(read)
            assert asked(env, kind, body) == counted(env, kind, body), (zone, kind, body)
    assert keeps or clickhouse_read == {"presence", "counts"}


def merged(env: Env) -> bool:
    """Whether every event is rolled up and each group has one presence row (the Loader rolls
    and merges when it is idle; the visit spans with them)."""
    keys = ", ".join(c.name for c in PRESENCE_KEYS)
    result = env.runtime.warehouse.report(
        "SELECT (SELECT rolled FROM roost.rollups), (SELECT max(log_offset) FROM roost.events), "
        "(SELECT count(*) FROM roost.presence), "
        f"(SELECT count(*) FROM (SELECT DISTINCT {keys} FROM roost.presence))",
        timeout=30,
        max_rows=1,
    )
    rolled, loaded, rows, groups = result.rows[0]
    return bool(rolled == loaded and rows == groups)


def test_presence_answers_as_the_events_do(env: Env) -> None:
    rng = random.Random(18)
    send(env, [{"type": "track", "userId": "once", "event": "Play", "messageId": f"once{h}",
                "timestamp": f"2024-03-29T{h}:00:00Z"} for h in (10, 11)])  # fmt: skip
    # someone there three days running (a day between their first and last), and someone
    # there on two days a day apart (none between)
    send(env, [{"type": "track", "userId": who, "event": "Play", "messageId": f"{who}{day}",
                "timestamp": f"2024-03-{day}T10:00:00Z"}
               for who, days in (("thrice", (22, 23, 24)), ("twice", (22, 24))) for day in days])  # fmt: skip
    viewed = env.client.post(  # no one's: a visitor, no user or anonymous id
        "/api/event",
        json={"n": "pageview", "u": "https://shop.test/", "d": "default"},
        headers={"User-Agent": AGENTS[0]},
    )
    assert viewed.status_code == 202, viewed.text
    for start in range(0, 600, 100):  # one load each: a query waits for them
        send(env, traffic(rng, 100, start))
        game = env.client.post("/api/v1/events", json={"events": played(rng, 40)},
                               headers={"X-Write-Key": env.write_key})  # fmt: skip
        assert game.status_code == 200 and game.json()["rejected"] == 0, game.text
        asked(env, "query", BODIES[0][0])
    same_answers(env)
    for panel in ("entry-pages", "exit-pages"):  # a visit with no pageview has no such page
        body = {"date_range": RANGE, **PANELS[panel][1]}
        rows = asked(env, "query", body)["results"]
        assert rows and all(row["dimensions"][0] for row in rows), rows
    if isinstance(env.runtime.warehouse.flavor, DuckDBFlavor):
        deadline = time.monotonic() + 10
        while not merged(env):
            assert time.monotonic() < deadline, "the presence rows were never merged"
            time.sleep(0.05)
        same_answers(env)

    # Links change: anonymous a1 and a2 become u3, and a4 becomes u1; then u3 is linked too
    send(env, [
        {"type": "identify", "userId": "u3", "anonymousId": "a1", "messageId": "l1"},
        {"type": "alias", "userId": "u3", "previousId": "a2", "messageId": "l2"},
        {"type": "alias", "userId": "u1", "previousId": "a4", "messageId": "l3"},
        {"type": "alias", "userId": "u1", "previousId": player(2), "messageId": "l5"},
        {"type": "alias", "userId": "u3", "previousId": player(4), "messageId": "l6"},
    ])  # fmt: skip
    same_answers(env)
    send(env, [{"type": "alias", "userId": "u6", "previousId": "u3", "messageId": "l4"}])
    same_answers(env)

    deleting = {
        "Authorization": f"Bearer {env.runtime.metadata.create_key('default', 'delete')[1]}"
    }
    if not isinstance(env.runtime.warehouse.flavor, DuckDBFlavor):
        env.runtime.warehouse.remake_after = 0  # type: ignore[attr-defined]  # no report waits
    erased = env.client.request("DELETE", "/api/v1/users/u6", headers=deleting)
    assert erased.status_code == 200 and erased.json()["events"] > 0, erased.text
    same_answers(env)
    erased = env.client.post(
        "/api/v1/erasures",
        json={"since": "2024-03-30T10:30:00Z", "until": "2024-03-31T01:15:00Z"},
        headers=deleting,
    )
    assert erased.status_code == 200 and erased.json()["events"] > 0, erased.text
    same_answers(env)
    if not isinstance(env.runtime.warehouse.flavor, DuckDBFlavor):
        # the hours the erasures marked, read from the events until now, made again
        deadline = time.monotonic() + 30
        while env.runtime.warehouse.report(
            f"SELECT count() FROM ({clickhouse_hourly.marked(env.runtime.warehouse.db, '< 2')})",
            timeout=30,
            max_rows=1,
        ).rows != [[0]]:
            assert time.monotonic() < deadline, "the erased hours were never counted again"
            time.sleep(0.1)
        same_answers(env)


@pytest.mark.parametrize(
    ("zone", "since"),
    [
        ("UTC", datetime(1900, 1, 1)),
        ("Europe/Berlin", datetime(1900, 1, 1)),  # +00:53:28 until 1893
        ("Europe/Amsterdam", datetime(1940, 5, 16)),  # +00:20 until 1940-05-15 23:40 UTC
        ("America/St_Johns", rollup.HORIZON),  # -03:30
        ("Australia/Lord_Howe", rollup.HORIZON),  # +10:30, and +11 in summer
        ("Asia/Kathmandu", rollup.HORIZON),  # +05:45
    ],
)
def test_the_zones_whose_hours_are_utc_hours(zone: str, since: datetime) -> None:
    assert rollup.whole_hours_since(zone) == since


def pageviews(minutes: int) -> list[Event]:
    """40 pageviews of three visitors, `minutes` apart from 2024-03-30 10:00 UTC."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)
    return [
        Event(message_id=f"m{n}", project_id=1, dialect="segment", type="page",
              anonymous_id=f"a{n % 3}", visitor=f"v{n % 3}",
              timestamp=moment + timedelta(minutes=minutes * n), received_at=moment)
        for n in range(40)
    ]  # fmt: skip


def test_rollups_missing_or_of_another_shape_are_made_again_from_the_events(
    tmp_path: Path,
) -> None:
    """A database from before the rollups (or from a Roost that kept them in another shape)
    gets them made from its events when it opens: the same rows the loads had made."""
    events = pageviews(minutes=7)
    for n, event in enumerate(events[::4]):  # and a game session of 10 events, hours long
        event.type, event.event, event.build, event.session_id = ("session", "Session:Start",
                                                                  f"1.{n % 2}", "g1")  # fmt: skip
    path = tmp_path / "events.duckdb"
    warehouse = DuckDBWarehouse(path)
    warehouse.load([(1, 20, msgspec.json.encode(events[:20]))])
    warehouse.load([(21, 20, msgspec.json.encode(events[20:]))])
    loaded = rollup_rows(warehouse)
    warehouse.close()
    assert all(loaded) and len(loaded[3]) == 5  # its 5 hours

    for changes in (
        [
            "ALTER TABLE roost.presence RENAME COLUMN linked TO person",  # another shape
            "DROP TABLE roost.visits",  # from before them
        ],
        ["DROP TABLE roost.seen"],  # from before the last-seen rows alone
        [  # behind the rollups: a Roost from before them rolled events up meanwhile
            "DELETE FROM roost.seen WHERE dimension = 'event'",
            "UPDATE roost.seen_held SET held = held - 1",
        ],
        [  # kept per fewer columns by a Roost before this one
            "DELETE FROM roost.seen WHERE dimension LIKE 'visitor%'",
            "UPDATE roost.seen_held SET kept = '{}'",
        ],
        ["DROP TABLE roost.session_hours"],  # from before the session hours
        [  # behind the rollups: a Roost before them rolled events up meanwhile
            "DELETE FROM roost.session_hours WHERE hour(timestamp) = 13",
            "UPDATE roost.session_hours_held SET held = held - 1",
        ],
        ["DROP TABLE roost.counts"],  # from before the hourly counts
        [  # behind the rollups: a Roost before them rolled events up meanwhile
            "DELETE FROM roost.counts WHERE hour(timestamp) = 12",
            "UPDATE roost.counts_held SET held = held - 1",
        ],
    ):
        con = duckdb.connect(str(path))
        for change in changes:
            con.execute(change)
        con.close()
        warehouse = DuckDBWarehouse(path)
        try:
            assert rollup_rows(warehouse) == loaded
        finally:
            warehouse.close()


def test_an_erasure_keeps_the_rollups_and_the_events_past_them_apart(tmp_path: Path) -> None:
    """Some events rolled up, some loaded after (counted from the events): an erasure makes
    the rollups of its hours from the rolled events that remain, and the rest stay counted
    from the events — the same rows as rollups made afresh."""
    events = pageviews(minutes=1)
    path = tmp_path / "events.duckdb"
    warehouse = DuckDBWarehouse(path)
    warehouse.load([(1, 20, msgspec.json.encode(events[:20]))])
    warehouse.tidy()  # rolled up
    warehouse.load([(21, 20, msgspec.json.encode(events[20:]))])  # past them
    assert warehouse.erase(1, ids=["a1"]) == 13
    kept = rollup_rows(warehouse)
    warehouse.close()
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE roost.presence")
    con.close()
    warehouse = DuckDBWarehouse(path)
    try:
        assert rollup_rows(warehouse) == kept
        assert all(row[PRESENCE_NAMES.index("who")] != "a1" for row in kept[0])
    finally:
        warehouse.close()


PRESENCE_NAMES = [c.name for c in PRESENCE_KEYS]


def rollup_rows(warehouse: DuckDBWarehouse) -> tuple[list[Any], ...]:
    """The presence rows, each group's rows merged, the visits, the last-seen rows, the
    session hours and the hourly counts, each hour's merged (all rolled up first, as a report
    does)."""
    keys = ", ".join(c.name for c in PRESENCE_KEYS)
    presence = warehouse.report(
        f"SELECT {keys}, sum(events) FROM {warehouse.flavor.presence(1)} GROUP BY ALL ORDER BY ALL",
        timeout=30,
        max_rows=10000,
    ).rows
    kept = warehouse.flavor.kept_visits(1)
    visits = warehouse.report(f"SELECT * FROM {kept} ORDER BY ALL", timeout=30, max_rows=100).rows
    seen = warehouse.report(
        f"SELECT * FROM {warehouse.flavor.seen(1)} ORDER BY ALL", timeout=30, max_rows=1000
    ).rows
    sessions = warehouse.report(
        f"SELECT timestamp, session_id, {', '.join(SESSION_MERGED.values())} "
        f"FROM {warehouse.flavor.session_hours(1)} GROUP BY ALL ORDER BY ALL",
        timeout=30,
        max_rows=1000,
    ).rows
    counted = warehouse.report(
        f"SELECT {', '.join(c.name for c in COUNT_KEYS)}, sum(events) "
        f"FROM {warehouse.flavor.counts(1)} GROUP BY ALL ORDER BY ALL",
        timeout=30,
        max_rows=1000,
    ).rows
    return presence, visits, seen, sessions, counted


def test_a_late_event_joins_two_visits_and_its_erasure_parts_them(tmp_path: Path) -> None:
    """Visits rolled up, then an event between two of them (20 minutes after the one, 20
    before the other) makes them one visit; erasing it makes them two again — each time the
    same visits as made afresh from the events."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)

    def view(n: int, minutes: int, visitor: str = "v1") -> Event:
        return Event(message_id=f"m{n}", project_id=1, dialect="segment", type="page",
                     anonymous_id=f"a{n}", visitor=visitor, path=f"/{n}",
                     timestamp=moment + timedelta(minutes=minutes), received_at=moment)  # fmt: skip

    path = tmp_path / "events.duckdb"
    warehouse = DuckDBWarehouse(path)

    def visits() -> list[Any]:
        kept = warehouse.flavor.kept_visits(1)
        return warehouse.report(
            f"SELECT visitor, timestamp, ended, events, entry_page, exit_page FROM {kept} "
            "ORDER BY ALL",
            timeout=30,
            max_rows=100,
        ).rows

    def afresh() -> list[Any]:
        made = EventsOnly(warehouse.flavor).visits_of(warehouse.flavor.rows(1), 1800)
        return warehouse.report(
            f"SELECT visitor, timestamp, ended, events, entry_page, exit_page FROM ({made}) "
            "ORDER BY ALL",
            timeout=30,
            max_rows=100,
        ).rows

    try:
        early = [view(1, 0), view(2, 10), view(3, 50), view(4, 70), view(5, 15, "v2")]
        warehouse.load([(1, 5, msgspec.json.encode(early))])
        warehouse.tidy()
        assert [(v[0], v[3], v[4], v[5]) for v in visits()] == [
            ("v1", 2, "/1", "/2"), ("v1", 2, "/3", "/4"), ("v2", 1, "/5", "/5")
        ]  # fmt: skip
        warehouse.load([(6, 1, msgspec.json.encode([view(6, 30)]))])  # late, in between
        assert [(v[0], v[3], v[4], v[5]) for v in visits()] == [
            ("v1", 5, "/1", "/4"), ("v2", 1, "/5", "/5")
        ]  # fmt: skip
        assert visits() == afresh()
        assert warehouse.erase(1, ids=["a6"]) == 1
        assert [(v[0], v[3]) for v in visits()] == [("v1", 2), ("v1", 2), ("v2", 1)]
        assert visits() == afresh()
    finally:
        warehouse.close()


def test_reports_rolling_while_the_loader_loads_keep_the_rollups_exact(tmp_path: Path) -> None:
    """Reports roll up what was loaded from their own threads while the Loader loads and
    merges: the kept visits and presence rows end as those made afresh from the events."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)
    rng = random.Random(7)
    events = [
        Event(message_id=f"c{n}", project_id=1, dialect="segment", type="page",
              anonymous_id=f"a{n % 17}", visitor=f"v{n % 17}", path=f"/{n % 5}",
              timestamp=moment + timedelta(minutes=rng.randrange(0, 600)), received_at=moment)
        for n in range(2000)
    ]  # fmt: skip
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    kept = warehouse.flavor.kept_visits(1)
    stop = threading.Event()
    failures: list[BaseException] = []

    def ask() -> None:
        while not stop.is_set():
            try:
                warehouse.report(f"SELECT count(*) FROM {kept}", timeout=30, max_rows=1)
            except BaseException as exc:
                failures.append(exc)
                return

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for t in askers:
        t.start()
    try:
        for i in range(0, 2000, 50):
            warehouse.load([(i + 1, 50, msgspec.json.encode(events[i : i + 50]))])
            if i % 500 == 0:
                warehouse.tidy()
    finally:
        stop.set()
        for t in askers:
            t.join()
    try:
        assert failures == []
        made = rollup_rows(warehouse)
    finally:
        warehouse.close()
    con = duckdb.connect(str(tmp_path / "events.duckdb"))
    con.execute("DROP TABLE roost.visits")  # made again from the events at the next open
    con.close()
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    try:
        assert rollup_rows(warehouse) == made
    finally:
        warehouse.close()


def _visit_checks(
    warehouse: DuckDBWarehouse,
) -> tuple[Callable[[], list[Any]], Callable[[], list[Any]]]:
    """Project 1's kept visits, and its visits made afresh from its events (people's only:
    bots' events make no visit), each column of each, in one order."""
    names = ", ".join(f'"{c.name}"' for c in VISIT_COLUMNS)

    def kept() -> list[Any]:
        return warehouse.report(
            f"SELECT {names} FROM {warehouse.flavor.kept_visits(1)} ORDER BY ALL",
            timeout=30, max_rows=1000,
        ).rows  # fmt: skip

    def afresh() -> list[Any]:
        people = f"(SELECT * FROM {warehouse.flavor.rows(1)} AS e WHERE NOT e.bot)"
        made = EventsOnly(warehouse.flavor).visits_of(people, 1800)
        return warehouse.report(
            f"SELECT {names} FROM ({made}) ORDER BY ALL", timeout=30, max_rows=1000
        ).rows

    return kept, afresh


def test_visits_kept_as_traffic_arrives_in_order_are_those_made_afresh(tmp_path: Path) -> None:
    """Events arriving in order extend the visitor's last kept visit (or start new ones) from
    the new events alone: on streams with gaps at the 30-minute edge (exactly 30 minutes
    joins, a microsecond more parts), visits with no pageview before or after one, bot
    events, loads that split a visit anywhere, and a late event for one visitor in the same
    roll as others arriving in order, every kept visit, column by column, is the one made
    afresh from the events."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)
    rng = random.Random(11)
    gaps = [timedelta(seconds=1800), timedelta(seconds=1800, microseconds=1),
            timedelta(seconds=5), timedelta(minutes=29), timedelta(hours=2), timedelta(0)]  # fmt: skip
    events: list[Event] = []
    for v in range(6):
        at = moment + timedelta(minutes=v)
        for n in range(60):
            at += rng.choice(gaps)
            kind = rng.choice(["page", "track", "track"] if v % 2 else ["page", "track"])
            events.append(
                Event(message_id=f"s{v}-{n}", project_id=1, dialect="segment", type=kind,
                      event=None if kind == "page" else "Click", anonymous_id=f"a{v}",
                      visitor=f"v{v}", path=f"/{v}/{n}", browser=rng.choice(["Chrome", None]),
                      bot=(v == 5 and n % 3 == 0), timestamp=at, received_at=moment)
            )  # fmt: skip
    events.sort(key=lambda e: e.timestamp)  # in order, the visitors interleaved
    late = Event(message_id="late", project_id=1, dialect="segment", type="page",
                 anonymous_id="a2", visitor="v2", path="/late",
                 timestamp=events[len(events) // 3].timestamp, received_at=moment)  # fmt: skip
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    kept, afresh = _visit_checks(warehouse)

    try:
        offset, i = 1, 0
        while i < len(events):
            size = rng.randrange(1, 25)
            chunk = events[i : i + size]
            if i <= 2 * len(events) // 3 < i + size:
                chunk = [*chunk, late]
            warehouse.load([(offset, len(chunk), msgspec.json.encode(chunk))])
            warehouse.tidy()  # rolls what was loaded
            offset += len(chunk)
            i += size
        visits = kept()
        assert visits == afresh()
        assert len(visits) > 30  # the gaps parted the streams into many visits
        assert any(v[VISIT_NAMES.index("entry_page")] is None for v in visits)  # no pageview
    finally:
        warehouse.close()


def test_visits_kept_as_events_arrive_a_little_late_are_those_made_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events a few seconds out of order, and a few up to 50 minutes — a server's
    never-silent visitor, tracks and now and then a pageview, beside visitors with gaps at
    the 30-minute edge that late events bridge — every kept visit, column by column, is the one made afresh from the events; and
    late tracks inside a kept visit are joined to it, not remade from all its events."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)
    rng = random.Random(7)
    events: list[Event] = []
    for v in range(5):
        at = moment + timedelta(seconds=v)
        steps = [timedelta(seconds=3)] if v == 0 else [  # v0: never silent
            timedelta(seconds=5), timedelta(minutes=29), timedelta(seconds=1800),
            timedelta(seconds=1800, microseconds=1), timedelta(minutes=31)]  # fmt: skip
        for n in range(150):
            at += rng.choice(steps)
            kind = "page" if rng.random() < (0.05 if v == 0 else 0.4) else "track"
            events.append(
                Event(message_id=f"s{v}-{n}", project_id=1, dialect="segment", type=kind,
                      event=None if kind == "page" else "Job", anonymous_id=f"a{v}",
                      visitor=f"v{v}", path=f"/{v}/{n}", browser=rng.choice(["Chrome", None]),
                      bot=(v == 4 and n % 5 == 0), timestamp=at, received_at=moment)
            )  # fmt: skip

    def arrives(e: Event) -> datetime:  # most a few seconds late, a few up to 50 minutes
        return e.timestamp + timedelta(seconds=rng.uniform(0, 3000 if rng.random() < 0.03 else 20))

    events.sort(key=arrives)
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    late: list[int] = []  # per roll: v0 noted as late (not after its kept visits)
    remade: list[int] = []  # and still noted when visits are remade from all their events
    inside, revisit = duckdb_rollups._inside, duckdb_rollups._revisit

    def v0(con: Any) -> int:
        return int(
            con.execute("SELECT count(*) FROM roost_touched WHERE visitor = 'v0'").fetchall()[0][0]
        )

    def noting_late(con: Any, new: str) -> None:
        late.append(v0(con))
        inside(con, new)

    def noting_remade(con: Any, upto: str) -> None:
        remade.append(v0(con))
        revisit(con, upto)

    monkeypatch.setattr(duckdb_rollups, "_inside", noting_late)
    monkeypatch.setattr(duckdb_rollups, "_revisit", noting_remade)

    kept, afresh = _visit_checks(warehouse)

    try:
        offset, i = 1, 0
        while i < len(events):
            size = rng.randrange(1, 30)
            chunk = events[i : i + size]
            warehouse.load([(offset, len(chunk), msgspec.json.encode(chunk))])
            warehouse.tidy()  # rolls what was loaded
            assert kept() == afresh(), f"after the events up to {offset + len(chunk) - 1}"
            offset += len(chunk)
            i += size
        assert len(kept()) > 20
        # v0's late rolls: most joined to its visit (late tracks), not remade
        rolls = list(zip(late, remade[: len(late)], strict=True))
        assert sum(1 for was, left in rolls if was and not left) > sum(late) // 2, rolls

        def one(at: datetime, kind: str, visitor: str) -> None:  # a late event, a roll of its own
            nonlocal offset
            event = Event(message_id=f"late-{offset}", project_id=1, dialect="segment",
                          type=kind, event=None if kind == "page" else "Job",
                          anonymous_id="late", visitor=visitor, path=f"/late/{offset}",
                          timestamp=at, received_at=moment)  # fmt: skip
            warehouse.load([(offset, 1, msgspec.json.encode([event]))])
            warehouse.tidy()
            offset += 1
            assert kept() == afresh(), f"after a late {kind} of {visitor} at {at}"

        pages = sorted(e.timestamp for e in events if e.visitor == "v0" and e.type == "page")
        one(pages[0] + (pages[1] - pages[0]) / 2, "page", "v0")  # between two: pages stay
        assert remade[-1] == 1  # a pageview within the visit: remade
        one(pages[0] + (pages[1] - pages[0]) / 3, "track", "v0")
        assert late[-1] == 1 and remade[-1] == 0  # a track within it: joined
        starts = sorted(e.timestamp for e in events if e.visitor == "v1")
        apart = next((a, b) for a, b in itertools.pairwise(starts)
                     if timedelta(minutes=31) <= b - a <= timedelta(minutes=59))  # fmt: skip
        one(apart[0] + (apart[1] - apart[0]) / 2, "track", "v1")  # bridges two visits
    finally:
        warehouse.close()


VISIT_NAMES = [c.name for c in VISIT_COLUMNS]


def test_last_seen_rows_put_in_order_again_are_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rolls add last-seen rows at the end, out of order; once enough are, the Loader's tidy
    puts them in the order of their kind, then people, again (a report reads its kind's row
    groups only) — the same rows, the same answers."""
    monkeypatch.setattr(duckdb_seen, "UNSORTED_MIN", 1)
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    try:
        events = pageviews(minutes=3)
        for first in range(0, 40, 10):  # each load a roll, its new people at the end
            group = [
                msgspec.structs.replace(e, anonymous_id=f"a{39 - n}") for n, e in enumerate(events)
            ]
            warehouse.load([(first + 1, 10, msgspec.json.encode(group[first : first + 10]))])
            warehouse._roll(seen=True)
        before = rollup_rows(warehouse)

        def stored() -> list[tuple[str, str]]:  # in the order they are stored
            rows = warehouse.report(
                "SELECT dimension, person FROM roost.seen", timeout=30, max_rows=1000
            ).rows
            return [(dimension, person) for dimension, person in rows]

        assert stored() != sorted(stored())
        warehouse.tidy()
        assert stored() == sorted(stored()) and len(stored()) == 98
        assert len([d for d, _ in stored() if d == ""]) == 40
        assert rollup_rows(warehouse) == before
        held = warehouse.report("SELECT sorted FROM roost.seen_held", timeout=30, max_rows=1)
        assert held.rows == [[98]]  # 40 people, 2 rows each; 3 visitors, 6 each
    finally:
        warehouse.close()


def test_a_report_reads_the_last_seen_rows_at_the_offset_of_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Loader merges new events into the last-seen rows only every so many rolls (a
    merge reads all their keys); a report first merges what is left, under the same lock as
    the rolls, so in its snapshot they hold the events up to the offset the other rollups
    and its events do — while the Loader rolls meanwhile."""
    monkeypatch.setattr(storage_duckdb, "ROLL_EVENTS", 20)  # a roll each load
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    events = pageviews(minutes=1) * 25
    stop = threading.Event()
    seen: list[Any] = []

    def ask() -> None:
        while not stop.is_set():
            result = warehouse.report(
                "SELECT (SELECT held FROM roost.seen_held) = $roost_rolled, "
                "(SELECT rolled FROM roost.rollups) = $roost_rolled",
                timeout=30,
                max_rows=1,
            )
            seen.append(tuple(result.rows[0]))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for t in askers:
        t.start()
    behind = []
    try:
        for i in range(0, 1000, 20):
            group = [msgspec.structs.replace(e, message_id=f"r{i + n}") for n, e in
                     enumerate(events[i : i + 20])]  # fmt: skip
            warehouse.load([(i + 1, 20, msgspec.json.encode(group))])
            behind.append(warehouse._held < warehouse._rolled)  # the Loader left them behind
    finally:
        stop.set()
        for t in askers:
            t.join()
    try:
        assert any(behind)
        assert len(seen) > 10 and set(seen) == {(True, True)}
    finally:
        warehouse.close()


def test_a_report_merges_the_last_seen_rows_only_if_it_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge of a few events reads every last-seen row's keys: a report that reads only
    the other rollups leaves them behind; one that reads them, or the session rows kept with
    them, first merges what is left."""
    monkeypatch.setattr(storage_duckdb, "ROLL_EVENTS", 20)  # a roll each load
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    report = REPORTS["query"]
    now = datetime.now(UTC)
    try:
        for i, table in enumerate(["", "roost.seen ", "roost.session_rows "]):
            group = [msgspec.structs.replace(e, message_id=f"m{i}-{n}")
                     for n, e in enumerate(pageviews(minutes=1)[:20])]  # fmt: skip
            warehouse.load([(20 * i + 1, 20, msgspec.json.encode(group))])
            pages = report.build(report.parse({"metrics": ["pageviews"]}, now), 1, warehouse.flavor)
            assert "roost.seen" not in pages
            warehouse.report(pages, timeout=30, max_rows=10)
            assert warehouse._rolled == 20 * (i + 1) and warehouse._held < warehouse._rolled
            if table:
                warehouse.report(f"SELECT count(*) FROM {table}", timeout=30, max_rows=1)
                assert warehouse._held == warehouse._rolled
        users = report.build(report.parse({"metrics": ["users"]}, now), 1, warehouse.flavor)
        assert "roost.seen " in users
        warehouse.load([(61, 20, msgspec.json.encode(pageviews(minutes=1)[:20]))])
        assert warehouse._held < warehouse._rolled
        warehouse.report(users, timeout=30, max_rows=10)
        assert warehouse._held == warehouse._rolled == 80
    finally:
        warehouse.close()


def test_those_last_seen_after_the_range_count_for_what_they_did_in_it(
    tmp_path: Path,
) -> None:
    """Asked on the range's day, with events timed after it (a client's clock ahead): of the
    people and visitors last seen after the range, those with an event in it count — a bot's
    event is no visitor's, and a page is theirs once they view it — as the events count them."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)
    events = [
        Event(message_id=f"b{n}", project_id=1, dialect="segment", type=kind, path=path,
              event=name, anonymous_id=who, visitor=visitor, bot=bot,
              timestamp=moment + timedelta(days=day), received_at=moment)
        for n, (who, visitor, bot, kind, path, name, day) in enumerate([
            ("a1", "v1", True, "page", "/", "Play", 0), ("a1", "v1", False, "page", "/", "Play", 2),
            ("a2", "v2", False, "page", "/", "Buy", 0), ("a2", "v2", False, "page", "/", "Play", 2),
            ("a3", "v3", False, "page", "/", "Buy", 2), ("a3", "v3", False, "track", "/b", "Buy", 0),
            ("a4", "v4", False, "track", "/", "Buy", 0),
        ])
    ]  # fmt: skip
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    report = REPORTS["query"]
    day = {"date_range": ["2024-03-30", "2024-03-30"]}
    asks = [
        (
            {
                "metrics": ["visitors"],
                "dimensions": ["page"],
                "filters": [["is", "type", ["page"]]],
            },
            [[1]],
        ),  # v2: v1's was a bot's
        ({"metrics": ["users", "events"], "dimensions": ["event"]}, [[3, 3], [1, 1]]),
        ({"metrics": ["users"]}, [[4]]),
    ]
    try:
        warehouse.load([(1, 7, msgspec.json.encode(events))])
        for body, expected in asks:
            query = report.parse({**body, **day}, moment + timedelta(hours=2))
            answers = [
                report.shape(query, warehouse.report(sql, timeout=30, max_rows=10))
                for sql in (
                    report.build(query, 1, flavor)
                    for flavor in (warehouse.flavor, EventsOnly(warehouse.flavor))
                )
            ]
            assert "roost.seen " in report.build(query, 1, warehouse.flavor)
            assert answers[0] == answers[1], body
            assert [r["metrics"] for r in answers[0]["results"]] == expected, body
    finally:
        warehouse.close()


def test_a_range_that_ended_counts_by_the_first_and_last_times_and_looks_up_the_rest(
    tmp_path: Path,
) -> None:
    """A range asked long after it ended: who was first or last seen in it was there; who was
    seen only before or only after it was not; who was seen before and after it is looked for
    among its events — a bot's pageview being no visitor's. As the events count them, from
    the last-seen rows."""
    moment = datetime(2024, 3, 30, 10, tzinfo=UTC)
    events = [
        Event(message_id=f"r{n}", project_id=1, dialect="segment", type="page", path=path,
              event="Play", anonymous_id=who, visitor=f"v-{who}", bot=bot,
              timestamp=moment + timedelta(days=day), received_at=moment)
        for n, (who, day, path, bot) in enumerate([
            ("around", -1, "/", False), ("around", 1, "/", False),  # not in it
            ("through", -1, "/", False), ("through", 0, "/b", False), ("through", 1, "/", False),
            ("began", 0, "/", False), ("began", 2, "/", False),
            ("ended", -2, "/b", False), ("ended", 0, "/", False),
            ("before", -1, "/", False), ("after", 2, "/", False),
            ("crawled", -1, "/", False), ("crawled", 0, "/", True), ("crawled", 1, "/", False),
        ])
    ]  # fmt: skip
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    report = REPORTS["query"]
    day = {"date_range": ["2024-03-30", "2024-03-30"]}
    pages = {"dimensions": ["page"], "filters": [["is", "type", ["page"]]]}
    asks = [  # through, began, ended (and crawled, a user by any event)
        ({"metrics": ["users"]}, [[4]]),
        ({"metrics": ["visitors"], **pages}, [[2], [1]]),  # "/": began, ended; "/b": through
        ({"metrics": ["users", "events"], "dimensions": ["event"]}, [[4, 4]]),
    ]
    try:
        warehouse.load([(1, len(events), msgspec.json.encode(events))])
        for body, expected in asks:
            query = report.parse({**body, **day}, datetime(2026, 12, 1, tzinfo=UTC))
            sql = report.build(query, 1, warehouse.flavor)
            assert "roost.seen " in sql and "roost.events " in sql, body  # the "around"s
            answers = [
                report.shape(query, warehouse.report(sql, timeout=30, max_rows=10))
                for sql in (sql, report.build(query, 1, EventsOnly(warehouse.flavor)))
            ]
            assert answers[0] == answers[1], body
            assert [r["metrics"] for r in answers[0]["results"]] == expected, body
    finally:
        warehouse.close()


def test_an_erasure_while_the_last_seen_rows_lag_makes_their_counts_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Loader rolls events up without merging them into the last-seen rows (a merge
    waits for MERGE_EVENTS): an erasure then makes the rows of its people and sessions again
    from the events up to the rows' own offset, not the rollups', so the merge after it adds
    each later event once — a first time and a count of events are no maxima."""
    monkeypatch.setattr(storage_duckdb, "ROLL_EVENTS", 20)  # a roll each load
    warehouse = DuckDBWarehouse(tmp_path / "events.duckdb")
    events = pageviews(minutes=5)
    for event in events:  # game events too: the session rows are made again likewise
        event.event, event.build, event.session_id = "Play", "1.0", f"s{event.anonymous_id}"
    try:
        warehouse.load([(1, 20, msgspec.json.encode(events[:20]))])
        warehouse.report("SELECT 1", timeout=30, max_rows=1)  # rows merged up to 20
        warehouse.load([(21, 20, msgspec.json.encode(events[20:]))])
        assert warehouse._held < warehouse._rolled  # rolled up, not merged
        # a0's events of 10:30–11:00 go; those after the rows' offset stay
        erased = warehouse.erase(
            1, ids=["a0"], since=datetime(2024, 3, 30, 10, 30), until=datetime(2024, 3, 30, 11)
        )
        assert erased > 0
        counted = warehouse.report(
            "SELECT s.person, s.events, (SELECT count(*) FROM roost.events e "
            "WHERE coalesce(e.user_id, e.anonymous_id) = s.person), s.first, "
            "(SELECT min(timestamp) FROM roost.events e "
            "WHERE coalesce(e.user_id, e.anonymous_id) = s.person) "
            "FROM roost.seen s WHERE dimension = '' ORDER BY 1",
            timeout=30,
            max_rows=10,
        ).rows
        assert [row[0] for row in counted] == ["a0", "a1", "a2"]
        assert all(row[1] == row[2] and row[3] == row[4] for row in counted), counted
        sessions = warehouse.report(
            "SELECT r.session_id, r.events, (SELECT count(*) FROM roost.events e "
            "WHERE e.session_id = r.session_id) FROM roost.session_rows r ORDER BY 1",
            timeout=30,
            max_rows=10,
        ).rows
        assert len(sessions) == 3 and all(row[1] == row[2] for row in sessions), sessions
    finally:
        warehouse.close()
