"""The deployment files: the systemd units pass `systemd-analyze verify` (pointed at this
checkout's `roost`), the compose file is a cluster of the documented shape, the Dockerfile
installs the package and serves it. Containers are not built here: no engine runs in CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.services import missing

DEPLOY = Path(__file__).parent.parent / "deploy"


@pytest.mark.parametrize("unit", ["roost.service", "roost-worker.service"])
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze", "apt-get install systemd")
    roost = Path(sys.executable).with_name("roost")
    text = (DEPLOY / unit).read_text()
    assert "ExecStart=/opt/roost/.venv/bin/roost " in text
    (tmp_path / unit).write_text(text.replace("/opt/roost/.venv/bin/roost", str(roost)))
    result = subprocess.run([analyze, "verify", str(tmp_path / unit)],
                            capture_output=True, text=True)  # fmt: skip
    # verify exits 0 even for a line it ignores ("Failed to parse …"): no output at all
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_compose_file_is_the_documented_cluster() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"nats-1", "nats-2", "nats-3", "clickhouse", "postgres"} <= set(services)
    ingest = [s for name, s in services.items() if name.startswith("serve-")]
    workers = [s for name, s in services.items() if name.startswith("worker-")]
    assert len(ingest) >= 2 and len(workers) >= 2
    for service in (*ingest, *workers):
        env = service["environment"]
        assert env["ROOST_CONSUMERS"] == "workers"
        assert env["ROOST_LOG_URL"].startswith("nats://")
        assert env["ROOST_WAREHOUSE_URL"].startswith("clickhouse://")
    assert all(w["command"] == ["roost", "worker"] for w in workers)


def test_the_dockerfile_installs_and_serves() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in text and 'CMD ["roost", "serve"]' in text
    assert "USER roost" in text and "/readyz" in text
