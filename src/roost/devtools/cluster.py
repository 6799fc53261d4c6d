"""A whole cluster on one machine, for trying it (`roost cluster up`) and for the failure
tests: PostgreSQL, ClickHouse and a JetStream cluster (roost/devtools/servers.py), then `roost serve`
ingest nodes and `roost worker` processes pointed at them by URL, as a real deployment is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from roost.devtools import servers
from roost.storage.metadata import Metadata


@dataclass
class Node:
    """One `roost serve` or `roost worker` process."""

    role: str  # serve | worker
    data: Path
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data / f"{self.role}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        self.data.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "roost", self.role, "--data", str(self.data)]
        env = {**os.environ, **self.env}
        if self.role == "serve":
            command += ["--port", str(self.port)]
            env["ROOST_METRICS_LISTEN"] = f"127.0.0.1:{servers.free_port()}"  # one per node
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def ready(self, timeout: float = 60) -> None:
        """For an ingest node: until /readyz answers."""
        if not servers.wait_until_ready(self.url, timeout, self.process):
            raise RuntimeError(f"roost {self.role} did not become ready; see {self.log_path}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crashed machine."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        servers.terminate(self.process, grace=30)


class LocalCluster:
    def __init__(
        self,
        root: Path,
        *,
        ingest: int = 2,
        workers: int = 2,
        nats_nodes: int = 3,
        first_port: int | None = None,
        plan: str = "enterprise",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.postgres = servers.Postgres(fsync=True, root=root)
        self.clickhouse = servers.ClickHouse(root=root)
        self.nats = servers.NatsCluster(nats_nodes, root=root)
        replicas = min(3, nats_nodes)
        postgres = f"postgresql+psycopg://postgres@127.0.0.1:{self.postgres.port}/postgres"
        self.env = {
            "ROOST_LOG_URL": f"{self.nats.url}?replicas={replicas}",
            "ROOST_WAREHOUSE_URL": f"clickhouse://127.0.0.1:{self.clickhouse.port}/roost",
            "ROOST_METADATA_URL": postgres,
            "ROOST_RATE_LIMIT_URL": postgres,  # the keys' limits hold across ingest nodes
            "ROOST_CONSUMERS": "workers",
            "ROOST_DEFAULT_PLAN": plan,
            "ROOST_LOG_LEVEL": "info",
            **(extra_env or {}),
        }
        ports = [first_port + i if first_port else servers.free_port() for i in range(ingest)]
        self.ingest = [
            Node("serve", root / f"ingest{i}", self.env, port) for i, port in enumerate(ports)
        ]
        self.workers = [Node("worker", root / f"worker{i}", self.env) for i in range(workers)]
        self.write_key = ""
        self.read_key = ""
        self.project_id = 0
        self.plan = plan

    def start(self) -> LocalCluster:
        try:
            self.postgres.start()
            self.clickhouse.start()
            self.nats.start()
            metadata = Metadata(self.env["ROOST_METADATA_URL"])
            try:
                _, project, _ = metadata.ensure_default(self.plan)
                self.project_id = project.id
                _, self.write_key = metadata.create_key(project.slug, "write", label="cluster")
                _, self.read_key = metadata.create_key(project.slug, "read", label="cluster")
            finally:
                metadata.close()
            for node in self.ingest:
                node.start()
            for node in self.ingest:
                node.ready()
            for worker in self.workers:  # after the ingest nodes made the stream and tables
                worker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in [*self.ingest, *self.workers]:
            node.stop()
        self.nats.stop()
        self.clickhouse.stop()
        self.postgres.stop()

    def clickhouse_sql(self, sql: str) -> str:
        answer = httpx.post(f"http://127.0.0.1:{self.clickhouse.port}/", content=sql, timeout=60)
        answer.raise_for_status()
        return answer.text


def run_until_stopped(cluster: LocalCluster, echo: Callable[[str], None]) -> None:
    """Start, say how to use it, and keep it up until Ctrl-C or SIGTERM."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    cluster.start()
    first = cluster.ingest[0].url
    echo(f"PostgreSQL  {cluster.env['ROOST_METADATA_URL']}")
    echo(f"ClickHouse  {cluster.env['ROOST_WAREHOUSE_URL']}")
    echo(f"JetStream   {cluster.env['ROOST_LOG_URL']}")
    for node in cluster.ingest:
        echo(f"ingest      {node.url}  (log: {node.log_path})")
    for worker in cluster.workers:
        echo(f"worker      (log: {worker.log_path})")
    echo(f"Write key: {cluster.write_key}")
    echo(f"Read key:  {cluster.read_key}")
    echo("Try it:")
    echo(
        f"  curl -s {first}/v1/track -u '{cluster.write_key}:' "
        """-H 'Content-Type: application/json' -d '{"userId": "user-1", "event": "Hello"}'"""
    )
    echo(
        f"  curl -s {first}/api/v1/sql -H 'Authorization: Bearer {cluster.read_key}' "
        """-d '{"sql": "select event, count(*) as n from events group by event"}'"""
    )
    echo("Ctrl-C stops the cluster and removes the servers' data (node logs stay).")
    try:
        while not stopping:
            for node in [*cluster.ingest, *cluster.workers]:
                if node.process is not None and node.process.poll() is not None:
                    echo(f"roost {node.role} ({node.data.name}) exited; see {node.log_path}")
                    node.process = None
            time.sleep(0.5)
    finally:
        cluster.stop()
