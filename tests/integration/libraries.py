"""What the tests of other tools' client libraries share: a Roost of their own, SQL against
it, and Node packages from the npm registry (installed once into a cache, run as a script)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.integration.server import Server, create_key
from tests.integration.services import missing


def serving(data: Path) -> Iterator[Server]:
    """A running Roost on `data` for a module's tests (a fixture's body)."""
    running = Server(data).start()
    try:
        yield running
    finally:
        running.stop()


def rows(server: Server, sql: str) -> list[list[Any]]:
    read = create_key(server.data, "read")
    answer = httpx.post(f"{server.url}/api/v1/sql", json={"sql": sql},
                        headers={"Authorization": f"Bearer {read}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def node_cache() -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        missing("Node.js and npm", "apt-get install nodejs npm")
    return Path(os.environ.get("ROOST_NODE_CACHE", Path.home() / ".cache" / "roost-tests" / "node"))


def run_node(server: Server, package: str, spec: str, script: str, **env: str) -> str:
    """Install `spec` (once) and run `script` with KEY (a write key) and HOST (Roost) set;
    its stdout, after checking it exited 0."""
    cache = node_cache()
    if not (cache / "node_modules" / package).is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(shutil.which("npm")), "install", "--silent", "--prefix", str(cache),
                        spec], check=True, timeout=300)  # fmt: skip
    path = cache / f"send-{package.replace('/', '-').lstrip('@')}.js"
    path.write_text(script)
    environment = {**os.environ, "KEY": create_key(server.data, "write"), "HOST": server.url,
                   "NODE_PATH": str(cache / "node_modules"), **env}  # fmt: skip
    result = subprocess.run(["node", str(path)], capture_output=True, text=True,
                            env=environment, cwd=cache, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout
