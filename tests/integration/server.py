"""A real `roost serve` process on a free loopback port, for what crosses the network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from roost.devtools.servers import free_port, wait_until_ready


def roost(*args: str, data: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROOST_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "roost", *args],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        timeout=60,
    )


def create_key(data: Path, kind: str, project: str = "default") -> str:
    result = roost("keys", "create", "--project", project, "--kind", kind, "--json", data=data)
    return str(json.loads(result.stdout)["key"])


class Server:
    def __init__(self, data: Path, port: int | None = None, **env: str) -> None:
        self.data = data
        self.chosen_port = port is None  # ours to choose again if another process took it
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port()  # each server its own: several run at once
        self.env = {
            "ROOST_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            **{f"ROOST_{k.upper()}": v for k, v in env.items()},
        }
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, timeout: float = 30) -> Server:
        """Start `roost serve`; a free port taken by another process between its choice and
        the bind (other tests run servers too) is chosen again, twice at most."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as error:
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
                self.metrics_port = free_port()
                self.env["ROOST_METRICS_LISTEN"] = f"127.0.0.1:{self.metrics_port}"
                if self.chosen_port:
                    self.port = free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                self.output = ""
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Server:
        env = {**os.environ, "ROOST_LOG_LEVEL": "warning", **self.env}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roost",
                "serve",
                "--data",
                str(self.data),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        if wait_until_ready(self.url, timeout, self.process):
            return self
        if self.process.poll() is not None:
            self._collect()  # its pipe closed: not left for the garbage collector to warn of
            raise RuntimeError(f"roost serve exited: {self.output}")
        self.kill()
        raise RuntimeError("roost serve did not become ready")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._collect()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self._collect()
        return code

    def _collect(self) -> None:
        if self.process and self.process.stdout:
            self.output += self.process.stdout.read()
            self.process.stdout.close()
