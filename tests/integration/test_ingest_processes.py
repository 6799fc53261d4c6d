"""`ingest_processes = 3`: a real server and two ingest processes on one port.

Each request goes on a connection of its own, so the kernel hands them to all three
processes; what crosses to the server must be stored exactly once, answered as the server
answers, and what is not ingest must reach the server as it came.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from roost.consumers.debugger import MAX_PER_HOLDER
from tests.integration.server import Server, create_key
from tests.integration.test_durability import stop_under_load

pytestmark = pytest.mark.slow


def _fresh() -> httpx.Client:
    """A client that opens a new connection for every request."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def _linked(server: Server) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics").text
    found = re.search(r"^roost_ingest_link_requests_total (\S+)$", text, re.M)
    assert found, "the server exposes no roost_ingest_link_requests_total"
    return float(found.group(1))


def _children(server: Server) -> list[int]:
    assert server.process is not None
    pids: list[int] = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return [p for p in pids if "roost-ingest" in _cmdline(p) or "spawn_main" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _sql(server: Server, read: str, sql: str) -> list[list[object]]:
    with _fresh() as client:
        response = client.post(f"{server.url}/api/v1/sql", json={"sql": sql},
                               headers={"Authorization": f"Bearer {read}"})  # fmt: skip
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


def test_every_process_takes_events_and_each_is_stored_once(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", ingest_processes="3").start()
    try:
        write = create_key(server.data, "write")
        read = create_key(server.data, "read")
        with _fresh() as client:
            for i in range(120):  # every messageId four times, on four connections
                response = client.post(
                    f"{server.url}/v1/track",
                    json={"userId": f"u{i % 30}", "event": "Played", "messageId": f"m{i % 30}",
                          "properties": {"big": 10**30, "n": i % 30}},
                    auth=(write, ""),
                )  # fmt: skip
                assert response.json() == {"success": True}
            refused = client.post(f"{server.url}/v1/batch", auth=(write, ""), json={
                "batch": [{"type": "track", "userId": "a", "event": "Kept", "messageId": "k1"},
                          {"type": "track", "userId": "a", "messageId": "k2"}],
            })  # fmt: skip
            assert refused.status_code == 200
            assert refused.json()["accepted"] == 1
            assert refused.json()["errors"][0]["field"] == "batch[1].event"
            whole = client.post(f"{server.url}/v1/track", auth=(write, ""),
                                content=b'{"userId": "a", "event": "x",')  # fmt: skip
            assert whole.status_code == 400 and whole.json()["field"] == "body"
            no_key = client.post(f"{server.url}/v1/track", json={"userId": "a", "event": "x"})
            assert no_key.status_code == 401
        assert _linked(server) > 0, "no ingest process took a request"
        children = _children(server)
        assert len(children) == 2
        httpx.post(
            f"{server.url}/v1/track", auth=(write, ""), json={"userId": "z", "event": "Flush"}
        )
        deadline = time.monotonic() + 10
        while _sql(server, read, "select count(*) from events")[0][0] < 32:
            assert time.monotonic() < deadline, "the events did not reach the Warehouse"
            time.sleep(0.1)
        rows = _sql(server, read, "select message_id, count(*), max(properties.big::varchar) "
                                  "from events where event = 'Played' group by 1")  # fmt: skip
        assert len(rows) == 30 and all(row[1] == 1 for row in rows)
        assert {row[2] for row in rows} == {str(10**30)}
    finally:
        assert server.stop() == 0
    assert not [pid for pid in children if _cmdline(pid)], "an ingest process outlived its server"


def test_other_routes_reach_the_server_through_any_process(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", ingest_processes="3").start()
    try:
        read = create_key(server.data, "read")
        with _fresh() as client:
            for _ in range(30):
                assert client.get(f"{server.url}/readyz").json()["status"] == "ready"
                login = client.get(f"{server.url}/login")
                assert login.status_code == 200 and "<form" in login.text
                assert _sql(server, read, "select 40 + 2") == [[42]]
                missing = client.get(f"{server.url}/api/v1/nothing-here?x=%2F")
                assert missing.status_code == 404
    finally:
        server.stop()


def test_a_killed_server_leaves_nothing_acknowledged_unstored(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", ingest_processes="3").start()
    children = _children(server)
    stop_under_load(server, server.kill, after=5000)  # restarts on the same port: freed
    for pid in children:  # they went with the server
        assert not _cmdline(pid), f"ingest process {pid} outlived its server"


def test_a_killed_ingest_process_is_started_again_and_loses_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", ingest_processes="2", log_level="info").start()
    killed: list[int] = []

    def kill_child_then_stop() -> None:
        (child,) = _children(server)
        os.kill(child, signal.SIGKILL)
        killed.append(child)
        deadline = time.monotonic() + 10
        while not [p for p in _children(server) if p != child]:
            assert time.monotonic() < deadline, "the ingest process was not started again"
            time.sleep(0.1)
        time.sleep(1)  # the new one takes requests too
        assert server.stop() == 0

    stop_under_load(server, kill_child_then_stop, after=3000)
    assert killed and "starting it again" in server.output


def test_a_stream_through_an_ingest_process_ends_when_its_reader_goes(tmp_path: Path) -> None:
    """The debugger's stream, relayed: each gets the events, and one its reader closed is
    closed at the server too — else the key's streams would stay used up."""
    server = Server(tmp_path / "data", ingest_processes="3").start()
    try:
        read, write = create_key(server.data, "read"), create_key(server.data, "write")
        for round_ in range(2):  # the second round opens as many again: the first's were let go
            clients = [httpx.Client(timeout=30) for _ in range(MAX_PER_HOLDER)]
            streams = [
                c.send(httpx.Request("GET", f"{server.url}/api/v1/debugger/stream",
                                     headers={"Authorization": f"Bearer {read}"}), stream=True)
                for c in clients
            ]  # fmt: skip
            assert [s.status_code for s in streams] == [200] * MAX_PER_HOLDER, round_
            lines = [s.iter_lines() for s in streams]
            for it in lines:
                assert next(it).startswith(": roost debugger")
            event = {"userId": "u", "event": f"Seen {round_}"}
            assert httpx.post(f"{server.url}/v1/track", json=event, auth=(write, "")).is_success
            for it in lines:
                got = next(line for line in it if line.startswith("data:"))
                assert f"Seen {round_}" in got
            for s, c in zip(streams, clients, strict=True):
                s.close()
                c.close()
            time.sleep(1.0)  # the server notices each reader gone
    finally:
        server.stop()
