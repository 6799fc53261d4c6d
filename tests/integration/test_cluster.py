"""Cluster mode under failure: two ingest nodes and two workers on a 3-node JetStream
cluster, ClickHouse and PostgreSQL (roost/devtools/cluster.py, as `roost cluster up` starts them).
Mid-load one JetStream node, one ingest node and the active worker are SIGKILLed: every
acknowledged event must end in ClickHouse exactly once, and in the PostgreSQL destination
(whose key on the messageId makes a second copy impossible, so what is checked there is that
none is missing)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from roost.devtools.cluster import LocalCluster, Node
from roost.storage.metadata import Metadata

pytestmark = pytest.mark.slow
BATCH = 25


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path / "cluster", ingest=2, workers=2, nats_nodes=3).start()
    try:
        # No merges: a row loaded twice stays visible as two, so "exactly once" is checked
        local.clickhouse_sql("SYSTEM STOP MERGES roost.events")
        yield local
    finally:
        local.stop()


class Load:
    """Senders that each post batches of unique events to a node and, when it fails, send
    the same batch to another until one acknowledges it (as a client library retries)."""

    def __init__(self, nodes: list[Node], write_key: str, senders: int = 4) -> None:
        self.nodes = nodes
        self.key = write_key
        self.acked: set[str] = set()
        self.retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(senders)
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _send(self, sender: int) -> None:
        with httpx.Client(timeout=30) as client:
            self._batches(sender, client)

    def _batches(self, sender: int, client: httpx.Client) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            ids = [f"s{sender}-{n}-{i}" for i in range(BATCH)]
            batch = [
                {"type": "track", "userId": f"u{sender}", "event": "Load", "messageId": m}
                for m in ids
            ]
            for attempt in itertools.count():
                node = self.nodes[(sender + attempt) % len(self.nodes)]
                try:
                    answer = client.post(f"{node.url}/v1/batch", json={"batch": batch},
                                         headers={"X-Write-Key": self.key})  # fmt: skip
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    assert answer.json()["rejected"] == 0, answer.text
                    with self._lock:
                        self.acked.update(ids)
                    break
                assert answer is None or answer.status_code >= 500, answer.text
                with self._lock:
                    self.retries += 1
                time.sleep(0.2)


def active_worker(cluster: LocalCluster, timeout: float = 30) -> Node:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in cluster.workers:
            if worker.alive() and "worker running" in worker.log_path.read_text():
                return worker
        time.sleep(0.1)
    raise AssertionError("no worker took the lease")


def clickhouse_counts(cluster: LocalCluster) -> dict[str, int]:
    text = cluster.clickhouse_sql(
        "SELECT message_id, count() FROM roost.events GROUP BY message_id FORMAT TabSeparated"
    )
    return {m: int(c) for m, c in (line.split("\t") for line in text.splitlines())}


def delivered_ids(dsn: str, schema: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        try:
            return [r[0] for r in conn.execute(f"SELECT id FROM {schema}.tracks")]
        except psycopg.errors.UndefinedTable:
            return []


def test_acknowledged_events_survive_killed_nodes_exactly_once(cluster: LocalCluster) -> None:
    metadata = Metadata(cluster.env["ROOST_METADATA_URL"])
    _, admin = metadata.create_key("default", "admin")
    metadata.close()
    dsn = f"postgresql://postgres@127.0.0.1:{cluster.postgres.port}/postgres"
    schema = f"dest_{uuid.uuid4().hex[:8]}"
    made = httpx.put(
        f"{cluster.ingest[0].url}/api/v1/admin/destinations/pg",
        json={"kind": "postgres", "dsn": dsn, "schema": schema, "batch_seconds": 0.2},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 200, made.text
    first_worker = active_worker(cluster)

    load = Load(cluster.ingest, cluster.write_key).start()
    time.sleep(3)
    cluster.nats.nodes[1].kill()  # a JetStream node: the stream keeps a quorum of 2
    time.sleep(3)
    cluster.ingest[0].kill()  # its senders' batches go to the other node
    time.sleep(3)
    first_worker.kill()  # the standby takes the lease and resumes from the stored cursors
    time.sleep(4)
    load.stop()
    acked = load.acked
    assert len(acked) > 20 * BATCH, "the load hardly ran"
    assert load.retries > 0, "no batch met a killed node: the kills were not mid-load"
    print(f"{len(acked)} events acknowledged, {load.retries} batches sent again")
    assert active_worker(cluster) is not first_worker

    deadline = time.monotonic() + 120
    while True:
        counts = clickhouse_counts(cluster)
        delivered = delivered_ids(dsn, schema)
        if (acked <= counts.keys() and acked <= set(delivered)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert acked - counts.keys() == set(), "acknowledged events missing from ClickHouse"
    assert {m: c for m, c in counts.items() if c > 1} == {}, "events loaded twice"
    assert acked - set(delivered) == set(), "acknowledged events never delivered"
    assert set(delivered) <= counts.keys()  # nothing delivered that is not stored

    # Read your writes through an API node: it waits for the worker's stored position
    survivor = cluster.ingest[1]
    mid = uuid.uuid4().hex
    sent = httpx.post(
        f"{survivor.url}/v1/track",
        json={"userId": "reader", "event": "Mine", "messageId": mid},
        headers={"X-Write-Key": cluster.write_key},
    )
    assert sent.status_code == 200, sent.text
    seen = httpx.post(
        f"{survivor.url}/api/v1/sql",
        json={"sql": f"select count(*) as n from events where message_id = '{mid}'"},
        headers={"Authorization": f"Bearer {cluster.read_key}"},
    )
    assert seen.status_code == 200 and seen.json()["rows"] == [[1]], seen.text

    # A clean stop of what survived: each exits 0, with nothing raised on the way out
    for node in [survivor, *(w for w in cluster.workers if w.alive())]:
        assert node.process is not None
        node.process.terminate()
        assert node.process.wait(60) == 0, node.log_path.read_text()[-3000:]
        assert "Traceback" not in node.log_path.read_text(), node.log_path.read_text()[-3000:]


def test_an_erasure_leaves_the_others_of_its_messages_exactly_once(tmp_path: Path) -> None:
    """JetStream cannot rewrite a message: the erasure deletes each message holding the
    user's events and stores its other events again; the Warehouse must then hold those once,
    the user's none, and a consistent read must not wait on the gap the last message left."""
    local = LocalCluster(tmp_path / "cluster", ingest=1, workers=1, nats_nodes=1).start()
    try:  # merges stay on: ClickHouse runs its deletes (mutations) with them
        metadata = Metadata(local.env["ROOST_METADATA_URL"])
        _, admin = metadata.create_key("default", "admin")
        metadata.close()
        node, write = local.ingest[0], {"X-Write-Key": local.write_key}
        mixed = [
            {"type": "track", "userId": "gone" if i % 3 == 0 else "kept", "event": "E",
             "messageId": f"mixed-{i}"}
            for i in range(12)
        ]  # fmt: skip
        only_gone = [{"type": "track", "userId": "gone", "event": "E", "messageId": "last"}]
        for batch in (mixed, only_gone):  # the user's own message is the stream's last
            sent = httpx.post(f"{node.url}/v1/batch", json={"batch": batch}, headers=write)
            assert sent.status_code == 200 and sent.json()["rejected"] == 0, sent.text
        erased = httpx.delete(
            f"{node.url}/api/v1/users/gone",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=60,
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["log_events"] == 5, erased.text

        def sql(query: str) -> httpx.Response:
            return httpx.post(f"{node.url}/api/v1/sql", json={"sql": query},
                              headers={"Authorization": f"Bearer {local.read_key}"})  # fmt: skip

        seen = sql("select user_id, count(*) from events group by user_id")
        assert seen.status_code == 200 and seen.json()["rows"] == [["kept", 8]], seen.text
        counts = clickhouse_counts(local)
        assert {m: c for m, c in counts.items() if c > 1} == {}, "events stored twice"
        assert set(counts) == {f"mixed-{i}" for i in range(12) if i % 3}
        after = httpx.post(f"{node.url}/v1/track", headers=write,
                           json={"userId": "kept", "event": "After", "messageId": "after"})  # fmt: skip
        assert after.status_code == 200, after.text
        again = sql("select count(*) from events where message_id = 'after'")
        assert again.status_code == 200 and again.json()["rows"] == [[1]], again.text
    finally:
        local.stop()
