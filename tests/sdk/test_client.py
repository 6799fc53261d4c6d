"""The Python client against a real `roost serve`: batches, game events, an outage in the
middle of a run, 429 with Retry-After, 4xx reported, a full queue, opt-out, fork."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.sdk import Client, Failure
from tests.integration.server import Server, create_key, roost


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data").start()
    try:
        yield running
    finally:
        if running.process and running.process.poll() is None:
            running.stop()


def rows(server: Server, sql: str) -> list[list[Any]]:
    read = create_key(server.data, "read")
    answer = httpx.post(
        f"{server.url}/api/v1/sql", json={"sql": sql}, headers={"Authorization": f"Bearer {read}"}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def count(server: Server, where: str = "TRUE") -> int:
    return int(rows(server, f"SELECT count(*) FROM events WHERE {where}")[0][0])


def test_every_call_arrives(server: Server) -> None:
    client = Client(create_key(server.data, "write"), server.url, flush_at_exit=False)
    client.identify("u1", {"plan": "pro"})
    client.track("Order Completed", {"revenue": 42.5}, user_id="u1")
    client.page("Pricing", {"path": "/pricing"}, user_id="u1", category="Docs")
    client.screen("Home", anonymous_id="a1")
    client.group("acme", {"name": "Acme"}, user_id="u1")
    client.alias("a1", "u1")
    assert client.flush(10)
    client.close()
    found = rows(server, "SELECT type, event FROM events ORDER BY type")
    assert [r[0] for r in found] == ["alias", "group", "identify", "page", "screen", "track"]
    assert client.sent == 6 and client.failed == 0
    revenue = rows(server, "SELECT properties->>'revenue' FROM events WHERE type = 'track'")
    assert revenue == [["42.5"]]


def test_game_helpers_feed_the_game_reports(server: Server) -> None:
    client = Client(create_key(server.data, "write"), server.url, build_version="2.0",
                    player_id="player-7", flush_at_exit=False)  # fmt: skip
    client.start_session()
    client.track_progression("Start", "Run", dim01="forest")
    client.track_progression("Complete", "Run", 120, dim01="forest")
    client.track_resource("Source", "Gold", 50)
    client.track_error("NullReference", signature="sig-1")
    client.end_session()
    client.close()
    read = create_key(server.data, "read")
    runs = httpx.post(f"{server.url}/api/v1/reports/runs", json={"date_range": "all"},
                      headers={"Authorization": f"Bearer {read}"}).json()["results"]  # fmt: skip
    assert [(r["subject"], r["starts"], r["completes"]) for r in runs] == [("Run", 1, 1)]
    sessions = httpx.post(f"{server.url}/api/v1/reports/sessions", json={"date_range": "all"},
                          headers={"Authorization": f"Bearer {read}"}).json()["results"]  # fmt: skip
    assert sessions[0]["sessions"] == 1 and sessions[0]["ended"] == 1
    assert count(server, "build = '2.0'") == 6


def test_nothing_is_lost_across_an_outage(server: Server) -> None:
    key = create_key(server.data, "write")
    failures: list[Failure] = []
    client = Client(key, server.url, max_retries=30, max_backoff=0.5, flush_interval=0.05,
                    on_error=failures.append, flush_at_exit=False)  # fmt: skip
    for i in range(100):
        client.track("Before", user_id=f"u{i}")
    assert client.flush(10)
    server.stop()
    for i in range(200):
        client.track("During", user_id=f"u{i}")
    time.sleep(1.0)  # the sender is retrying against a closed port
    restarted = Server(server.data, port=server.port).start()
    try:
        for i in range(100):
            client.track("After", user_id=f"u{i}")
        assert client.flush(30)
        client.close()
        assert failures == []
        assert count(server) == 400
        assert count(server, "event = 'During'") == 200
    finally:
        restarted.stop()


def test_429_waits_for_retry_after(server: Server) -> None:
    result = roost("keys", "create", "--project", "default", "--kind", "write", "--rate", "20",
                   "--burst", "20", "--json", data=server.data)  # fmt: skip
    key = json.loads(result.stdout)["key"]
    failures: list[Failure] = []
    client = Client(key, server.url, batch_size=20, on_error=failures.append,
                    max_backoff=5, flush_at_exit=False)  # fmt: skip
    started = time.monotonic()
    for i in range(60):
        client.track("Burst", user_id=f"u{i}")
    assert client.flush(30)
    client.close()
    assert failures == []
    assert count(server) == 60
    assert time.monotonic() - started >= 1.0  # 60 events at 20/s after a burst of 20


def test_refused_events_are_reported_not_retried(server: Server) -> None:
    failures: list[Failure] = []
    client = Client(create_key(server.data, "write"), server.url, on_error=failures.append,
                    flush_at_exit=False)  # fmt: skip
    client.track("Good", user_id="u1")
    client.track("", user_id="u1")  # an empty event name: refused by Roost, alone
    client.close()
    assert [(f.reason, len(f.events)) for f in failures] == [("rejected", 1)]
    assert "event" in failures[0].message
    bad_key = Client("rw_not_a_key", server.url, on_error=failures.append, flush_at_exit=False)
    bad_key.track("Lost", user_id="u1")
    bad_key.close()
    assert failures[-1].reason == "rejected" and failures[-1].status == 401
    assert count(server) == 1


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    failures: list[Failure] = []
    # Nothing listens on this port: every event waits in the queue.
    client = Client("rw_x", "http://127.0.0.1:9", max_queue=10, batch_size=5, max_retries=1000,
                    max_backoff=0.05, on_error=failures.append, flush_at_exit=False)  # fmt: skip
    started = time.perf_counter()
    for i in range(100):
        client.track("E", user_id=f"u{i}")
    assert time.perf_counter() - started < 1.0
    assert client.dropped >= 100 - 10 - 5 - 1  # the queue, a batch, one in hand
    assert sum(1 for f in failures if f.reason == "overflow") == client.dropped
    client.close(timeout=0.5)  # gives up on what it holds and what is queued, and says so
    deadline = time.monotonic() + 30  # on a loaded machine the sender may need longer to say it

    def given_up() -> int:
        return sum(len(f.events) for f in failures if f.reason == "gave_up")

    while client.dropped + given_up() < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    reasons = [(f.reason, len(f.events), f.message) for f in failures if f.reason != "overflow"]
    assert client.dropped + given_up() == 100, (client.dropped, client.sent, reasons)


def test_close_reports_what_was_queued_while_a_batch_was_retrying() -> None:
    failures: list[Failure] = []
    client = Client("rw_x", "http://127.0.0.1:9", max_queue=100, batch_size=5, max_retries=1000,
                    max_backoff=0.05, on_error=failures.append, flush_at_exit=False)  # fmt: skip
    for i in range(5):
        client.track("E", user_id=f"u{i}")
    deadline = time.monotonic() + 10
    while not client._queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the sender holds the five, retrying them
    for i in range(10):
        client.track("E", user_id=f"v{i}")
    client.close(timeout=0.5)
    client._thread.join(10)
    given_up = sum(len(f.events) for f in failures if f.reason == "gave_up")
    assert given_up == 15  # the batch in hand and the ten queued behind it


def test_opt_out_drops_at_the_source(server: Server) -> None:
    client = Client(create_key(server.data, "write"), server.url, opt_out=True,
                    flush_at_exit=False)  # fmt: skip
    assert client.track("Secret", user_id="u1") is None
    client.opt_out = False
    client.track("Public", user_id="u1")
    client.close()
    assert rows(server, "SELECT event FROM events") == [["Public"]]


def test_a_forked_child_sends_its_own_events(server: Server) -> None:
    key = create_key(server.data, "write")
    code = f"""
import os
from roost.sdk import Client
client = Client({key!r}, {server.url!r})
client.track("Parent", user_id="p")
client.flush(10)
pid = os.fork()
if pid == 0:
    client.track("Child", user_id="c")
    client.flush(10)
    os._exit(0)
os.waitpid(pid, 0)
client.track("Parent again", user_id="p")
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    found = sorted(r[0] for r in rows(server, "SELECT event FROM events"))
    assert found == ["Child", "Parent", "Parent again"]  # the last one sent at exit


def test_the_sdk_imports_without_the_servers_packages() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *a):\n"
        "        if name.split('.')[0] in {'starlette','duckdb','msgspec','sqlalchemy','httpx','pyarrow'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from roost.sdk import Client\n"
        "print(Client.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Client"


def test_many_threads_share_one_client(server: Server) -> None:
    import threading

    client = Client(create_key(server.data, "write"), server.url, flush_at_exit=False)

    def calls(n: int) -> None:
        for i in range(250):
            client.track("Threaded", {"i": i}, user_id=f"t{n}")

    threads = [threading.Thread(target=calls, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert client.sent == 1000 and client.dropped == 0
    assert rows(server, "SELECT count(DISTINCT message_id), count(*) FROM events") == [[1000, 1000]]
