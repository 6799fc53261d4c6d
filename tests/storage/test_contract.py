"""The Log and Warehouse contracts, run on every backend (parametrized fixtures).

Issue 6 adds the cluster backends (JetStream, ClickHouse) to `LOGS` and `WAREHOUSES`; every
test here then runs on them too.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from roost.consumers.loader import Loader
from roost.devtools.servers import Nats
from roost.errors import BackendError
from roost.model import Event
from roost.storage.log import jetstream
from roost.storage.log.jetstream import MESSAGE_BYTES, NatsLog, first_offset
from roost.storage.log.sqlite import SQLiteLog
from roost.storage.warehouse import clickhouse
from roost.storage.warehouse.clickhouse import ClickHouseWarehouse
from roost.storage.warehouse.clickhouse_hourly import HOURLY, MARKED_IN_SQL
from roost.storage.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import fresh_clickhouse_url

LOGS = ["sqlite", "nats"]
WAREHOUSES = ["duckdb", "clickhouse"]
Opener = Callable[[], Any]


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    server = Nats().start()
    yield server.url
    server.stop()


@pytest.fixture(params=LOGS)
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same Log each time it is called (a stream of its own per test on NATS)."""
    if request.param == "sqlite":
        return lambda: SQLiteLog(tmp_path / "log.sqlite")
    url = request.getfixturevalue("nats_url")
    stream = "T" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12]
    return lambda: NatsLog(f"{url}?stream={stream}")


@pytest.fixture
def open_sqlite_log(tmp_path: Path) -> Opener:
    return lambda: SQLiteLog(tmp_path / "log.sqlite")


@pytest.fixture(params=WAREHOUSES)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A Warehouse of its own per test (a database of its own on ClickHouse)."""
    if request.param == "duckdb":
        store: Any = DuckDBWarehouse(tmp_path / "events.duckdb")
    else:
        store = ClickHouseWarehouse(fresh_clickhouse_url())  # one server, a database each
    yield store
    store.close()


def event(n: int, project: int = 1, when: datetime | None = None) -> Event:
    now = when or datetime.now(UTC)
    return Event(
        message_id=f"m{n}",
        project_id=project,
        dialect="segment",
        type="track",
        event=f"E{n}",
        user_id="u",
        timestamp=now,
        received_at=now,
        properties={"n": n, "nested": {"a": [1, 2]}},
        context={"library": {"name": "test"}},
    )


def test_append_gives_increasing_offsets_and_read_follows(open_log: Opener) -> None:
    """Offsets increase in append order; SQLite's are dense, JetStream's are not (a message's
    sequence gives its events' offsets), so every lag is counted by the Log."""
    log = open_log()

    async def run() -> None:
        first = await log.append([event(1), event(2)])
        second, third = await asyncio.gather(
            log.append([event(3)]), log.append([event(4), event(5)])
        )
        assert first[1] == first[0] + 1  # one append's events are consecutive
        everything = first + sorted(second + third)
        assert everything == sorted(set(everything)) and min(second + third) > first[1]
        logged = await log.read(0, 100)
        assert [e.offset for e in logged] == everything
        assert [e.offset for e in await log.read(everything[1], 2)] == everything[2:4]
        assert await log.read(everything[-1], 10) == []
        assert logged[0].event == event(1, when=logged[0].event.received_at)
        assert logged[0].event.properties == {"n": 1, "nested": {"a": [1, 2]}}
        assert log.last_offset() == everything[-1]
        assert log.count_between(0, everything[-1]) == 5
        assert log.count_between(everything[0], everything[-1]) == 4
        assert log.count_between(everything[1], everything[3]) == 2
        assert log.count_between(everything[-1], everything[-1]) == 0
        if isinstance(log, SQLiteLog):
            assert everything == [1, 2, 3, 4, 5]
        else:
            assert everything[0] == first_offset(1, 2) and everything[2] == first_offset(2, 1)
        await log.close()

    asyncio.run(run())


def test_acknowledged_events_survive_reopen(open_log: Opener) -> None:
    written: list[int] = []

    async def write() -> None:
        log = open_log()
        written.extend(await log.append([event(n) for n in range(100)]))
        await log.close()

    asyncio.run(write())

    async def check() -> None:
        log = open_log()
        assert log.last_offset() == written[-1]
        assert [e.offset for e in await log.read(written[97], 10)] == written[98:]
        (more,) = await log.append([event(101)])
        assert more > written[-1] and log.count_between(0, more) == 101
        await log.close()

    asyncio.run(check())


def test_loader_follows_the_log_into_the_warehouse(open_log: Opener, warehouse: Any) -> None:
    log = open_log()
    loader = Loader(log, warehouse, batch_events=3)
    last: list[int] = []

    async def run() -> None:
        await log.append([event(n) for n in range(5)])
        assert loader.catch_up() == 5  # what a crash left behind, loaded at start-up
        log.subscribe(loader.notify)
        loader.start()
        offsets = await log.append([event(n) for n in range(5, 12)])
        assert await loader.caught_up(offsets[-1], timeout=5)
        assert warehouse.loaded_offset() == offsets[-1]
        last.append(offsets[-1])
        loader.stop()
        await log.close()

    asyncio.run(run())
    result = warehouse.project_sql(
        1, "select count(*), max(log_offset) from events", timeout=5, max_rows=10, max_bytes=1 << 20
    )
    assert result.rows == [[12, last[0]]]


def group(first: int, events: list[Event]) -> tuple[int, int, bytes]:
    return first, len(events), msgspec.json.encode(events)


def test_warehouse_counts_recent_ids_and_confines_sql(warehouse: Any, tmp_path: Path) -> None:
    old = datetime(2026, 1, 1, tzinfo=UTC)
    warehouse.load(
        [group(1, [event(1, 1, old), event(2, 1)]), group(3, [event(3, 2), event(4, 3)])]
    )
    warehouse.load(
        [group(3, [event(3, 2), event(4, 3), event(5, 2)])]
    )  # 3 and 4 are loaded already
    warehouse.load([group(1, [event(99)])])  # already loaded: ignored
    since = datetime.now(UTC) - timedelta(hours=1)
    assert warehouse.loaded_offset() == 5
    assert warehouse.count_since([1, 2], since) == 3
    assert warehouse.count_since([1], old) == 2
    assert warehouse.count_since([], old) == 0
    recent = {(p, m) for p, m, _ in warehouse.recent_message_ids(since)}
    assert recent == {(1, "m2"), (2, "m3"), (3, "m4"), (2, "m5")}
    result = warehouse.project_sql(
        2, "select event from events order by event", timeout=5, max_rows=10, max_bytes=1 << 20
    )
    assert result.columns == ["event"] and result.rows == [["E3"], ["E5"]]
    limited = warehouse.project_sql(
        2, "select event from events", timeout=5, max_rows=1, max_bytes=1 << 20
    )
    assert limited.truncated and len(limited.rows) == 1


def test_loader_reads_the_log_when_memory_has_a_gap(
    open_sqlite_log: Opener, warehouse: Any
) -> None:
    log = open_sqlite_log()
    loader = Loader(log, warehouse, batch_events=2)

    async def run() -> None:
        log.subscribe(loader.notify)
        await log.append([event(n) for n in range(3)])  # 1-3, remembered in memory
        loader._recent.clear()  # as if they had been dropped for piling up
        loader._recent_count = 0
        await log.append([event(n) for n in range(3, 5)])  # 4-5 in memory: a gap before them
        first = loader._next_batch(log.last_offset())  # the gap: read from the Log instead
        assert [(g[0], g[1]) for g in first] == [(1, 3)]  # about batch_events, whole groups
        warehouse.load(first)
        second = loader._next_batch(
            log.last_offset()
        )  # 4-5 follow what is loaded: taken from memory
        assert second == list(loader._recent)
        warehouse.load(second)
        await log.close()

    asyncio.run(run())
    result = warehouse.project_sql(
        1,
        "select log_offset from events order by log_offset",
        timeout=5,
        max_rows=10,
        max_bytes=1 << 20,
    )
    assert result.rows == [[1], [2], [3], [4], [5]]


def test_trim_drops_loaded_old_groups_but_keeps_the_newest(
    open_sqlite_log: Opener, warehouse: Any
) -> None:
    old = datetime(2026, 1, 1, tzinfo=UTC)
    loader_holder: list[Loader] = []

    async def run() -> None:
        log = open_sqlite_log()
        loader = Loader(log, warehouse, retention=86400)
        loader_holder.append(loader)
        await log.append([event(1, when=old), event(2, when=old)])  # group 1-2
        await log.append([event(3, when=old)])  # group 3
        await log.append([event(4, when=old)])  # group 4: the newest, always kept
        assert loader.trim(now=old.timestamp() + 2 * 86400) == 0  # nothing loaded yet: kept
        warehouse.load(log.read_groups(0, 3))  # loads groups 1-2 and 3
        assert warehouse.loaded_offset() == 3
        assert loader.trim(now=old.timestamp() + 2 * 86400) == 2
        assert [e.offset for e in await log.read(0, 10)] == [4]
        loader.catch_up()
        assert loader.trim(now=old.timestamp() + 2 * 86400) == 0  # the newest stays
        await log.close()
        reopened = open_sqlite_log()
        assert reopened.last_offset() == 4
        assert await reopened.append([event(5)]) == [5]
        await reopened.close()

    asyncio.run(run())


def test_trim_keeps_what_another_consumer_still_needs(
    open_sqlite_log: Opener, warehouse: Any
) -> None:
    old = datetime(2026, 1, 1, tzinfo=UTC)

    async def run() -> None:
        log = open_sqlite_log()
        loader = Loader(log, warehouse, retention=86400, holds=lambda: 1)  # e.g. profiles at 1
        for n in range(4):
            await log.append([event(n, when=old)])
        loader.catch_up()
        assert loader.trim(now=old.timestamp() + 2 * 86400) == 1  # only offset 1
        assert [e.offset for e in await log.read(0, 10)] == [2, 3, 4]
        await log.close()

    asyncio.run(run())


def test_identity_reads_give_every_identify_alias_and_group(open_log: Opener) -> None:
    async def run() -> None:
        log = open_log()
        one = await log.append([event(1), event(2)])
        identify = event(3)
        identify.type = "identify"
        two = await log.append([event(4), identify])
        (three,) = await log.append([event(6)])

        def typed(groups: list[tuple[int, int, bytes]]) -> dict[int, str]:
            decoded = (
                (first, msgspec.json.decode(blob, type=list[Event])) for first, _, blob in groups
            )
            return {first + i: e.type for first, events in decoded for i, e in enumerate(events)}

        everything = typed(log.read_groups(0, 100))
        assert everything == {
            one[0]: "track", one[1]: "track", two[0]: "track", two[1]: "identify", three: "track"
        }  # fmt: skip
        identities = typed(log.read_groups(0, 100, identities_only=True))
        assert identities[two[1]] == "identify"  # with, at most, the other events of its group
        assert all(everything[offset] == kind for offset, kind in identities.items())
        assert one[0] not in identities and three not in identities
        await log.close()

    asyncio.run(run())


def test_a_retried_message_id_keeps_its_first_offset(open_log: Opener) -> None:
    """Ingest dedups first; the Log's own dedup (JetStream's `Nats-Msg-Id`, made from the
    messageIds of an append) catches a retried request that reached another ingest node.
    SQLite's Log, behind one ingest, stores what it is given."""

    async def run() -> None:
        log = open_log()
        first = await log.append([event(1), event(2)])
        again = await log.append([event(1), event(2)])
        single = await log.append([event(3)])
        single_again = await log.append([event(3)])
        if isinstance(log, NatsLog):
            assert again == first and single_again == single
            assert log.last_offset() == single[0]
            assert [e.event.event for e in await log.read(0, 10)] == ["E1", "E2", "E3"]
        else:
            assert again == [3, 4] and single_again == [6]
        await log.close()

    asyncio.run(run())


def test_nats_stream_is_made_as_configured_and_erasure_deletes(nats_url: str) -> None:
    async def run() -> None:
        log = NatsLog(f"{nats_url}?stream=CONFIGURED&duplicate_window=30", max_age_hours=2)
        info = log.stream_info()
        assert info.config.max_age == 7200 and info.config.duplicate_window == 30
        assert info.config.allow_direct and info.config.num_replicas == 1
        kept, gone, after = event(1), event(2), event(3)
        gone.user_id = "erase-me"
        offsets = await log.append([kept, gone, after])
        assert len(info_messages(log)) == 1  # one message for the append
        erased = log.erase(1, lambda e: e.user_id == "erase-me", hints=["erase-me"])
        assert erased.message_ids == [gone.message_id]
        assert erased.replaced == [(offsets[0], offsets[2])]  # the group's others, stored again
        logged = await log.read(0, 10)
        assert [e.event.message_id for e in logged] == ["m1", "m3"]
        assert logged[0].offset > offsets[2]  # at new offsets
        assert log.last_offset() > logged[-1].offset  # and an empty message closes the erasure
        groups = log.read_groups(logged[-1].offset, 10)
        assert [(g.size, g.events) for g in groups] == [(0, b"[]")]
        assert log.count_between(0, log.last_offset()) == 2
        replay = log.offset_before(0)  # before the first message left
        assert replay < logged[0].offset and (await log.read(replay, 1))[0] == logged[0]
        assert log.offset_before(datetime.now(UTC).timestamp() + 60) == log.last_offset()
        await log.close()

    asyncio.run(run())


def test_the_warehouse_drops_what_a_nats_erasure_stored_again(
    nats_url: str, warehouse: Any
) -> None:
    """After the Loader has the events an erasure stored again, the Warehouse deletes their
    rows at the old offsets (`Erased.replaced`): each event is then there once."""

    async def run() -> None:
        log = NatsLog(f"{nats_url}?stream=AGAIN{abs(hash(str(warehouse))) % 10**9}")
        loader = Loader(log, warehouse)
        gone = event(2)
        gone.user_id = "erase-me"
        await log.append([event(1), gone, event(3)])
        loader.catch_up()
        erased = log.erase(1, lambda e: e.user_id == "erase-me")
        warehouse.erase(1, ids=["erase-me"])
        loader.catch_up()
        twice = "select message_id, count(*) from events group by message_id order by message_id"
        assert rows(warehouse, twice) == [["m1", 2], ["m3", 2]]  # until the old rows go
        assert warehouse.erase(1, offsets=[]) == 0  # no range: nothing (ClickHouse has no FALSE)
        assert warehouse.erase(1, offsets=erased.replaced) == 2
        assert rows(warehouse, twice) == [["m1", 1], ["m3", 1]]
        await log.close()

    asyncio.run(run())


def rows(warehouse: Any, sql: str) -> list[list[Any]]:
    return list(warehouse.project_sql(1, sql, timeout=5, max_rows=100, max_bytes=1 << 20).rows)


def test_a_long_nats_lag_is_counted_from_what_one_read_holds(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lag of millions is not read whole to be counted: past COUNT_BYTES, the messages not
    read are taken at the average size of those read."""

    async def run() -> None:
        log = NatsLog(f"{nats_url}?stream=LAG")
        offsets = [await log.append([event(10 * m + i) for i in range(10)]) for m in range(12)]
        sizes = [len(g.events) for g in log.read_groups(0, 100)]
        monkeypatch.setattr(jetstream, "COUNT_BYTES", sum(sizes[:3]) + 10)  # ~3 messages
        assert log.count_between(0, offsets[-1][-1]) == 120  # 3 read, 9 estimated alike
        assert log.count_between(offsets[9][4], offsets[-1][-1]) == 25  # near the end: read
        await log.close()

    asyncio.run(run())


def info_messages(log: NatsLog) -> list[int]:
    state = log.stream_info().state
    return list(range(state.first_seq, state.last_seq + 1))


def test_nats_appends_split_into_messages_within_their_limits(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append is one message unless it holds more than SPAN events or MESSAGE_BYTES, or
    identify calls (one message each, in their place): what a consumer reads back is the same
    events in the same order."""
    monkeypatch.setattr(jetstream, "SPAN", 8)

    async def run() -> None:
        log = NatsLog(f"{nats_url}?stream=SPLIT")
        identify = event(100)
        identify.type = "identify"
        big = [event(n) for n in (200, 201)]
        for e in big:
            e.properties = {"blob": "x" * (MESSAGE_BYTES // 2)}
        batch = [*(event(n) for n in range(20)), identify, *(event(n) for n in range(20, 23)), *big]
        offsets = await log.append(batch)
        assert offsets == sorted(offsets) and len(set(offsets)) == len(batch)
        groups = log.read_groups(0, 100)
        assert [g.size for g in groups] == [8, 8, 4, 1, 4, 1]  # 8 8 4 | identify | 3 + big | big
        assert all(len(g.events) <= MESSAGE_BYTES for g in groups)
        logged = await log.read(0, 100)
        assert [e.event.message_id for e in logged] == [e.message_id for e in batch]
        assert [e.offset for e in logged] == offsets
        assert log.count_between(0, log.last_offset()) == len(batch)
        assert log.count_between(offsets[5], offsets[21]) == 16
        await log.close()

    asyncio.run(run())


def test_a_loader_taking_over_inserts_only_what_a_killed_one_had_not() -> None:
    """ClickHouse records the loaded offset after the insert: a loader killed between the two
    leaves rows past it, which the next one must not insert again."""
    url = fresh_clickhouse_url()
    first = ClickHouseWarehouse(url)
    first._command(f"SYSTEM STOP MERGES {first.table}")  # a duplicate stays visible
    first.load([group(1, [event(1), event(2)])])

    def killed(loaded: int | None) -> None:
        raise SystemExit  # the process died after the insert returned

    first._advance = killed  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        first.load([group(3, [event(3), event(4)])])
    second = ClickHouseWarehouse(url)
    assert second.take_over() == 2
    second.load([group(3, [event(3), event(4), event(5)])])
    offsets = second._rows(f"SELECT log_offset FROM {second.table} ORDER BY log_offset")
    assert offsets == [[1], [2], [3], [4], [5]]
    assert second.stored_offset() == 5 and second.loaded_offset() == 5
    first.close()
    second.close()


def test_a_load_after_an_insert_that_failed_inserts_only_what_did_not_go_in() -> None:
    """An insert can fail after ClickHouse took its rows (the answer lost on the way back):
    the Loader loads the same groups again, and neither the events nor their hourly rows
    may then hold them twice."""
    store = ClickHouseWarehouse(fresh_clickhouse_url())
    store._command(f"SYSTEM STOP MERGES {store.table}")  # a duplicate stays visible
    store.load([group(1, [event(1), event(2)])])
    real = store._command

    def lost(sql: str, body: Any = None) -> None:
        real(sql, body)
        if sql.startswith(f"INSERT INTO {store.table} "):
            raise BackendError("ClickHouse: the connection was reset")

    store._command = lost  # type: ignore[method-assign]
    with pytest.raises(BackendError):
        store.load([group(3, [event(3), event(4)])])
    store._command = real  # type: ignore[method-assign]
    try:
        store.load([group(3, [event(3), event(4)]), group(5, [event(5)])])
        offsets = store._rows(f"SELECT log_offset FROM {store.table} ORDER BY log_offset")
        counted = [store._rows(f"SELECT sum(events) FROM {store.db}.{h.name}") for h in HOURLY]
    finally:
        store.close()
    assert offsets == [[1], [2], [3], [4], [5]]
    assert counted == [[[5]], [[5]]]


def test_the_loader_taking_over_makes_the_hourly_rows_every_process_then_reads() -> None:
    """Events loaded by a Roost that kept no hourly rows (or by a loader killed while making
    them): the next loader makes them from the events before it inserts any, and the other
    processes' reports read them from then on (until then, the events)."""
    url = fresh_clickhouse_url()
    older = ClickHouseWarehouse(url)
    older._make_hourly = lambda: None  # type: ignore[method-assign]
    older.load([group(1, [event(1), event(2), event(3)])])
    api = ClickHouseWarehouse(url)  # another process: none to read yet
    assert api.flavor.counts(1) is None and api.flavor.presence(1) is None
    loader = ClickHouseWarehouse(url)

    def summed(store: ClickHouseWarehouse) -> list[Any]:
        return [store._rows(f"SELECT sum(events) FROM {store.db}.{h.name}") for h in HOURLY]

    try:
        assert loader.take_over() == 3
        assert summed(loader) == [[[3]], [[3]]]
        loader.load([group(4, [event(4)])])  # the views add what is inserted since
        assert summed(loader) == [[[4]], [[4]]]
        api.version()  # read before each report
        for relation in (api.flavor.counts(1), api.flavor.presence(1)):
            assert relation is not None
            assert api._rows(f"SELECT sum(tally) FROM {relation}") == [[4]]
    finally:
        for store in (older, api, loader):
            store.close()


def test_the_hours_an_erasure_marked_are_read_from_the_events_until_made_again() -> None:
    """ClickHouse's erasure deletes events, which its hourly rows do not see: a report reads
    the hours it marked from the events, until the loader has made them again — once the
    mark is older than a report that read it may still run."""
    store = ClickHouseWarehouse(fresh_clickhouse_url(), remake_after=3600)
    when = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    store.load([group(1, [event(1, when=when), event(2, when=when), event(3)])])

    def read() -> list[Any]:
        store.version()  # as a report does before its SQL
        relation = store.flavor.counts(1)
        assert relation is not None
        return [store._rows(f"SELECT sum(tally) FROM {relation}"), "UNION ALL" in relation]

    try:
        assert read() == [[[3]], False]
        assert store.erase(1, offsets=[(2, 2)]) == 1
        assert read() == [[[2]], True]  # 10:00 from its events
        store.tidy()  # the mark is too young
        assert read() == [[[2]], True]
        store.remake_after = 0
        store.tidy()
        assert read() == [[[2]], False]
        assert store._rows(f"SELECT sum(events) FROM {store.db}.presence") == [[2]]
    finally:
        store.close()


def test_a_report_reads_the_events_while_too_many_hours_are_marked_to_name() -> None:
    """An erasure of a long range marks more hours than a report's SQL may name: the reports
    then count from the events, until the loader has made those hours again."""
    store = ClickHouseWarehouse(fresh_clickhouse_url(), remake_after=3600)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    hours = MARKED_IN_SQL + 2  # all but the last erased: one more than may be named
    store.load([group(1, [event(n + 1, when=start + timedelta(hours=n)) for n in range(hours)])])
    try:
        assert store.erase(1, offsets=[(1, hours - 1)]) == hours - 1
        store.version()
        assert store.flavor.counts(1) is None and store.flavor.presence(1) is None
        store.remake_after = 0
        store.tidy()
        store.version()
        relation = store.flavor.counts(1)
        assert relation is not None and "UNION ALL" not in relation
        assert store._rows(f"SELECT sum(tally) FROM {relation}") == [[1]]
    finally:
        store.close()


def test_an_insert_sent_in_chunks_as_its_rows_are_made_is_one_whole_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rows of a load go to ClickHouse as they are made (HTTP chunks), here one chunk a
    group; a group with nothing left to insert sends none, and every row arrives once."""
    monkeypatch.setattr(clickhouse, "STREAM_BYTES", 1)
    sent: list[int] = []
    real = clickhouse._streamed

    def counting(groups: Any, keep: Any) -> Any:
        for chunk in real(groups, keep):
            sent.append(chunk.count(b"\n"))
            yield chunk

    monkeypatch.setattr(clickhouse, "_streamed", counting)
    store = ClickHouseWarehouse(fresh_clickhouse_url())
    try:
        store.load([group(1, [event(1), event(2)])])
        store.load([group(1, [event(1), event(2), event(3)]), group(4, [event(4)]),
                    group(5, [event(5), event(6)])])  # fmt: skip
        offsets = store._rows(f"SELECT log_offset FROM {store.table} ORDER BY log_offset")
    finally:
        store.close()
    assert offsets == [[1], [2], [3], [4], [5], [6]]
    assert sent == [2, 1, 1, 2]  # the first group of the second load held one new event


def test_the_sqlite_log_wal_stays_bounded_under_sustained_appends(tmp_path: Path) -> None:
    """The Loader checkpoints the Log when it is idle; under load that never comes (a 10 M
    event fill grew the WAL to 2.7 GB): past `checkpoint_bytes` appended, a thread of the
    Log's own checkpoints it (PASSIVE: appends go on meanwhile) and the file is cut back."""
    log = SQLiteLog(tmp_path / "log.sqlite", checkpoint_bytes=256 * 1024)
    blob = "x" * 10_000

    async def fill() -> None:
        for n in range(300):  # ~3 MB, never idle, never asked to checkpoint
            e = event(n)
            e.properties = {"blob": blob}
            await log.append([e])

    asyncio.run(fill())
    deadline = time.monotonic() + 5
    wal = tmp_path / "log.sqlite-wal"
    while wal.stat().st_size > 1024 * 1024 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wal.stat().st_size <= 1024 * 1024, f"WAL at {wal.stat().st_size} bytes"
    assert len(log.read_sync(0, 1000)) == 300
    asyncio.run(log.close())
