"""The Unity SDK's C# core (sdks/unity), built with Debian's Mono (`mcs`) and its tests run
against a live Roost: the core's own tests (batching, backoff, a 400 dropped, the queue kept
across a restart, opt-out, the web SDK's hash), then every call through the static client and
an outage followed by a restart, checked here by SQL. It cannot run inside Unity here: the
UnityWebRequest transport and the MonoBehaviour are compiled only by Unity."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.libraries import rows, serving
from tests.integration.server import Server, create_key
from tests.integration.services import missing

SDK = Path(__file__).resolve().parents[2] / "sdks" / "unity"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mcs = shutil.which("mcs")
    if mcs is None or shutil.which("mono") is None:
        missing("Mono (mcs, mono)", "apt-get install mono-devel")
    out = tmp_path_factory.mktemp("unity-sdk")
    sources = sorted(str(p) for p in (SDK / "Runtime").rglob("*.cs"))
    for command in (
        [mcs, "-target:library", "-warnaserror+", "-r:System.Net.Http.dll",
         f"-out:{out / 'Roost.Game.dll'}", *sources],
        [mcs, f"-r:{out / 'Roost.Game.dll'}", "-r:System.Net.Http.dll",
         f"-out:{out / 'Tests.exe'}", str(SDK / "Tests~" / "Tests.cs")],
    ):  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("unity-roost") / "data")


def run(built: Path, only: str, **env: str) -> str:
    result = subprocess.run(["mono", str(built / "Tests.exe"), only], capture_output=True,
                            text=True, timeout=120, cwd=built, env={**env, "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_cores_own_tests(built: Path) -> None:
    out = run(built, "Test")
    assert out.count("ok   Test") == 8, out


def test_every_call_through_the_static_client(built: Path, server: Server) -> None:
    out = run(built, "LiveEvery", ROOST_URL=server.url, ROOST_KEY=create_key(server.data, "write"))
    assert "ok   LiveEveryCallThroughTheStaticClient" in out
    found = rows(server, "SELECT type, event, value, dim1, "
                         "properties->>'signature', session_id FROM events "
                         "WHERE build = 'unity-live-1.0' ORDER BY timestamp, log_offset")  # fmt: skip
    assert [(r[0], r[1]) for r in found] == [
        ("track", "Session:Start"), ("track", "Start:Run"), ("track", "CTA:Clicked"),
        ("track", "Source:Coins"), ("track", "NullRef"), ("track", "Complete:Run"),
        ("track", "Session:End"),
    ]  # fmt: skip
    by_name = {r[1]: r for r in found}
    assert by_name["Source:Coins"][2] == 50 and by_name["Complete:Run"][2] == 93.5
    assert by_name["Start:Run"][3] == "forest" and by_name["NullRef"][4] == "sig-unity"
    assert len({r[5] for r in found}) == 1  # one session
    # IdentifyUser("unity-player"): the web SDK's hash of it, so a player is one on both
    players = rows(
        server, "SELECT DISTINCT anonymous_id FROM events WHERE build = 'unity-live-1.0'"
    )
    assert players == [["22e27e32d9c730a2c8c8303333ed7ea3"]]


def test_an_outage_then_a_restart_loses_nothing(built: Path, server: Server) -> None:
    out = run(built, "LiveAnOutage", ROOST_URL=server.url,
              ROOST_KEY=create_key(server.data, "write"))  # fmt: skip
    assert "ok   LiveAnOutageThenARestartLosesNothing" in out
    found = rows(server, "SELECT event, count(*) FROM events WHERE build = 'unity-outage-1.0' "
                         "GROUP BY event ORDER BY event")  # fmt: skip
    assert found == [["Offline:Event0", 1], ["Offline:Event1", 1], ["Offline:Event2", 1],
                     ["Offline:Event3", 1], ["Offline:Event4", 1], ["Session:Start", 1]]  # fmt: skip
