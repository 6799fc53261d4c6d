"""Start Roost (and the do-nothing baseline) for real, load them with wrk, record the figures.

    python bench/run.py [--duration 10] [--connections 64] [--rounds 3] [--profile]
                        [--ingest-processes N]

Appends a dated section to bench/RESULTS.md with the command, the machine and the figures:
single-event requests/s with p50/p99 latency, events/s with 100-event batches, ingest-to-query
freshness under load, and the same requests against the baseline app on the same stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from roost.devtools.servers import free_port

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "RESULTS.md"


def wait_ready(url: str, path: str = "/healthz", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def lua_script(path: Path, body: bytes, key: str) -> Path:
    script = path / f"post-{len(body)}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50_ms\\": %f, '
        '\\"p99_ms\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n", summary.requests, '
        "summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, "
        "summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, "
        "summary.errors.status))\n"
        "end\n"
    )
    return script


def wrk(url: str, script: Path, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^JSON (.*)$", out, re.M)
    assert match, out
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def track_body() -> bytes:
    return json.dumps(
        {
            "userId": "user-123",
            "event": "Order Completed",
            "properties": {"order_id": "o-1", "revenue": 42.5, "currency": "EUR", "items": 3},
            "context": {
                "ip": "203.0.113.7",
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "page": {"url": "https://shop.example/checkout?utm_source=newsletter"},
            },
        }
    ).encode()


def batch_body(n: int = 100) -> bytes:
    item = json.loads(track_body())
    item["type"] = "track"
    return json.dumps({"batch": [item] * n}).encode()


async def freshness(url: str, write: str, read: str, samples: int) -> list[float]:
    """Seconds from an event's acknowledgement to the moment a query sees it."""
    gaps = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(samples):
            mid = uuid.uuid4().hex
            body = {"userId": "probe", "event": "Freshness", "messageId": mid}
            response = await client.post(
                "/v1/track", json=body, headers={"Authorization": f"Bearer {write}"}
            )
            acked = time.perf_counter()
            assert response.status_code == 200, response.text
            sql = {"sql": f"select count(*) from events where message_id = '{mid}'"}
            while True:
                r = await client.post(
                    "/api/v1/sql", json=sql, headers={"Authorization": f"Bearer {read}"}
                )
                if r.json()["rows"][0][0] == 1:
                    gaps.append(time.perf_counter() - acked)
                    break
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
    return gaps


class Process:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def publish(report: str, *, record: bool) -> None:
    """Print a dated report section, and append it to bench/RESULTS.md when `record`."""
    print(report)
    if record:
        with RESULTS.open("a") as f:
            f.write(report)


def start_roost(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`roost serve` on `data` at a free loopback port, logging warnings only: its process and
    URL (wait for /readyz before using it)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", "--data", str(data), "--port", str(port)],
        env={**os.environ, "ROOST_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, f"http://127.0.0.1:{port}"


def new_key(data: Path, kind: str) -> str:
    """A raw key of `kind` for the default project."""
    made = roost_cli(data, "keys", "create", "--project", "default", "--kind", kind, "--json")
    return str(json.loads(made)["key"])


def side_project_key(data: Path, project: str) -> str:
    """A write key for `project`, made if missing: a bench's own events, apart from the
    default project's (which other benches read), to be erased with `erase_project`."""
    with contextlib.suppress(subprocess.CalledProcessError):  # made by an earlier run
        roost_cli(data, "projects", "create", project)
    made = roost_cli(data, "keys", "create", "--project", project, "--kind", "write", "--json")
    return str(json.loads(made)["key"])


def erase_project(data: Path, url: str, project: str, timeout: float = 600) -> None:
    """Erase every event of `project` through the server at `url`, and wait until the
    erasure is off the disk too (the files rewritten without them)."""
    roost_cli(data, "erase", "--project", project, "--url", url,
              "--since", "1970-01-01T00:00:00Z", "--until", "9999-01-01T00:00:00Z")  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = roost_cli(data, "erasures", "--project", project, "--url", url, "--json")
        if all(e["on_disk_at"] for e in json.loads(listed)):
            return
        time.sleep(1)
    raise RuntimeError(f"the erasure of {project}'s events did not reach the disk")


def roost_cli(data: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "roost", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


METRICS_TOKEN = "bench-metrics"


class Usage:
    """The resident memory (the largest seen) and CPU time of a process and its children,
    sampled from /proc while a load runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tree(self) -> list[int]:
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:  # a thread may end between the listing and the read
                    todo += [int(c) for c in task.read_text().split()]
                except (FileNotFoundError, ProcessLookupError):
                    continue
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        total = 0
        for pid in self.tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.max_rss = max(self.max_rss, self.rss())

    def __enter__(self) -> Usage:
        self._cpu, self._wall = self.cpu_seconds(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cores = (self.cpu_seconds() - self._cpu) / (time.monotonic() - self._wall)


def one_round(args: argparse.Namespace, work: Path, n: int) -> dict[str, object]:
    """A fresh `roost serve`: single events, then batches with the freshness probe, then the
    do-nothing app with the same requests."""
    data = work / f"data-{n}"
    roost_cli(data, "projects", "create", "bench")
    write = json.loads(
        roost_cli(data, "keys", "create", "--project", "bench", "--kind", "write", "--json")
    )["key"]
    read = json.loads(
        roost_cli(data, "keys", "create", "--project", "bench", "--kind", "read", "--json")
    )["key"]
    single, batch = lua_script(work, track_body(), write), lua_script(work, batch_body(), write)
    figures: dict[str, object] = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process(
        [sys.executable, "-m", "roost", "serve", "--data", str(data), "--port", str(port)],
        {"ROOST_LOG_LEVEL": "warning", "ROOST_METRICS_TOKEN": METRICS_TOKEN,
         "ROOST_INGEST_PROCESSES": str(args.ingest_processes)},
    )  # fmt: skip
    profile_out = work / f"profile-{n}.txt"
    single_profile_out = work / f"profile-single-{n}.txt"

    def spy(out: Path) -> subprocess.Popen[bytes] | None:
        """py-spy, counting only what holds the GIL: one process's ceiling is one core of it."""
        if not (args.profile and n == 0 and shutil.which("py-spy")):
            return None
        return subprocess.Popen(
            ["py-spy", "record", "--pid", str(server.proc.pid), "--duration",
             str(args.duration), "--format", "raw", "--output", str(out), "--nonblocking",
             "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    try:
        wait_ready(url, "/readyz")
        wrk(url + "/v1/track", single, 2, args.connections)  # warm up
        single_spy = spy(single_profile_out)
        figures["roost single"] = wrk(url + "/v1/track", single, args.duration, args.connections)
        if single_spy:
            single_spy.wait()
        spy_ = spy(profile_out)

        async def batch_and_probe() -> tuple[dict[str, float], list[float]]:
            load = asyncio.to_thread(wrk, url + "/v1/batch", batch, args.duration, args.connections)
            probe = freshness(url, write, read, 40)
            return await asyncio.gather(load, probe)

        with Usage(server.proc.pid) as usage:
            figures["roost batch"], figures["gaps"] = asyncio.run(batch_and_probe())
        figures["cores"], figures["rss"] = usage.cores, usage.max_rss
        if spy_:
            spy_.wait()
        figures["stored"] = httpx.post(
            url + "/api/v1/sql",
            json={"sql": "select count(*) from events"},
            headers={"Authorization": f"Bearer {read}"},
            timeout=120,
        ).json()["rows"][0][0]
        figures["metrics"] = httpx.get(
            url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        ).text
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    if profile_out.exists():
        figures["profile"] = profile_out
    if single_profile_out.exists():
        figures["single profile"] = single_profile_out

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    baseline = Process(
        [sys.executable, "-m", "uvicorn", "baseline_app:app", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--app-dir", str(ROOT)]
    )  # fmt: skip
    try:
        wait_ready(base, "/v1/track")
        wrk(base + "/v1/track", single, 2, args.connections)
        figures["baseline single"] = wrk(
            base + "/v1/track", single, args.duration, args.connections
        )
        figures["baseline batch"] = wrk(base + "/v1/batch", batch, args.duration, args.connections)
    finally:
        baseline.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="each a fresh server; medians")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server during the first batch load"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print, do not append to RESULTS.md"
    )
    parser.add_argument(
        "--ingest-processes", type=int, default=1, help="Roost's ingest_processes setting"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="roost-bench-"))
    rounds = [one_round(args, work, n) for n in range(args.rounds)]
    publish(render(args, rounds), record=not args.no_record)
    shutil.rmtree(work, ignore_errors=True)


def histogram_quantile(metrics: str, name: str, q: float) -> float | None:
    buckets = []
    for line in metrics.splitlines():
        m = re.match(rf'{name}_bucket{{le="([^"]+)"}} (\S+)', line)
        if m:
            buckets.append((float(m.group(1)), float(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le
    return None


def top_frames(profile: Path, n: int = 15) -> list[tuple[str, float]]:
    """Self time per function from py-spy's raw (collapsed stack) output."""
    totals: dict[str, int] = {}
    grand = 0
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        leaf = re.sub(r"\s*\(/.*/(site-packages|lib/python3\.\d+|src)/", " (", leaf)
        leaf = re.sub(r":\d+\)$", ")", leaf)  # per function, not per line
        totals[leaf] = totals.get(leaf, 0) + int(count)
        grand += int(count)
    return [
        (name, 100 * c / grand) for name, c in sorted(totals.items(), key=lambda kv: -kv[1])[:n]
    ]


def render(args: argparse.Namespace, rounds: list[dict[str, Any]]) -> str:
    def med(key: str, field: str, scale: float = 1) -> float:
        return statistics.median(r[key][field] * scale for r in rounds)

    def each(key: str, field: str, scale: float = 1, form: str = ",.0f") -> str:
        return " / ".join(format(r[key][field] * scale, form) for r in rounds)

    rs, bs = med("roost single", "rps"), med("baseline single", "rps")
    rb, bb = med("roost batch", "rps", 100), med("baseline batch", "rps", 100)
    p50s = [statistics.median(r["gaps"]) * 1000 for r in rounds]
    maxs = [max(r["gaps"]) * 1000 for r in rounds]
    rss = [r["rss"] / 2**20 for r in rounds]
    cores = [r["cores"] for r in rounds]
    first = rounds[0]
    metrics, stored = first["metrics"], sum(r["stored"] for r in rounds)
    expected = sum(
        int(r[k]["requests"]) * (100 if "batch" in k else 1)
        for r in rounds
        for k in ("roost single", "roost batch")
    )
    command = (
        f"python bench/run.py --duration {args.duration} --connections {args.connections} "
        f"--rounds {args.rounds}{' --profile' if args.profile else ''}"
        + (f" --ingest-processes {args.ingest_processes}" if args.ingest_processes != 1 else "")
    )
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — `{command}`\n",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
        f"wrk -t2 -c{args.connections} on the same cores as the server. Medians of {len(rounds)} "
        "rounds, each a fresh server (the rounds' own figures in brackets).\n",
        "| measurement | Roost | do-nothing app | Roost / baseline | target |",
        "|---|---|---|---|---|",
        f"| single-event POST /v1/track, req/s | {rs:,.0f} ({each('roost single', 'rps')}) | {bs:,.0f} | {rs / bs:.0%} | ≥ 60% |",
        f"| single-event p50 / p99 latency | {med('roost single', 'p50_ms'):.1f} / {med('roost single', 'p99_ms'):.1f} ms ({each('roost single', 'p99_ms', 1, '.1f')}) | {med('baseline single', 'p50_ms'):.1f} / {med('baseline single', 'p99_ms'):.1f} ms | | p99 ≤ 20 ms |",
        f"| 100-event batches, events/s | {rb:,.0f} ({each('roost batch', 'rps', 100)}) | {bb:,.0f} | {rb / bb:.0%} | ≥ 75,000 |",
        f"| batch p50 / p99 latency | {med('roost batch', 'p50_ms'):.1f} / {med('roost batch', 'p99_ms'):.1f} ms ({each('roost batch', 'p99_ms', 1, '.1f')}) | {med('baseline batch', 'p50_ms'):.1f} / {med('baseline batch', 'p99_ms'):.1f} ms | | p99 ≤ 250 ms |",
        f"| freshness under batch load, p50 / max | {statistics.median(p50s):.1f} / {max(maxs):.1f} ms ({' / '.join(f'{a:.0f}–{b:.0f}' for a, b in zip(p50s, maxs, strict=True))}) | | | p50 ≤ 100 ms, max ≤ 1 s |",
        f"| resident memory of Roost's processes under batch load, max | {max(rss):,.0f} MB ({' / '.join(f'{m:,.0f}' for m in rss)}) | | | ≤ 500 MB |",
        f"| CPU of Roost's processes under batch load | {statistics.median(cores):.2f} cores ({' / '.join(f'{c:.2f}' for c in cores)}) | | | |",
        "",
        f"Errors: Roost single {sum(r['roost single']['errors'] for r in rounds):.0f} socket / "
        f"{sum(r['roost single']['non2xx'] for r in rounds):.0f} non-2xx; batch "
        f"{sum(r['roost batch']['errors'] for r in rounds):.0f} / {sum(r['roost batch']['non2xx'] for r in rounds):.0f}. "
        f"Events stored: {stored:,} of {expected:,} acknowledged by wrk's requests "
        "(wrk counts requests cut off at the end of a run that the server still completes).",
        f"First round: Log group commit p50 {histogram_quantile(metrics, 'roost_log_commit_seconds', 0.5)} s, "
        f"p99 {histogram_quantile(metrics, 'roost_log_commit_seconds', 0.99)} s; "
        f"events per commit p50 {histogram_quantile(metrics, 'roost_log_batch_events', 0.5)}, "
        f"p99 {histogram_quantile(metrics, 'roost_log_batch_events', 0.99)}. "
        f"Warehouse loads p50 {histogram_quantile(metrics, 'roost_warehouse_load_seconds', 0.5)} s, "
        f"p99 {histogram_quantile(metrics, 'roost_warehouse_load_seconds', 0.99)} s; "
        f"checkpoints p99 {histogram_quantile(metrics, 'roost_warehouse_checkpoint_seconds', 0.99)} s "
        "(all histogram bucket bounds).",
    ]
    if "profile" in first:
        lines += ["", "Where the server's time went during the batch load (py-spy --gil, self time "
                  "holding the GIL):", ""]  # fmt: skip
        lines += [f"- {pct:.1f}% {name}" for name, pct in top_frames(first["profile"])]
    if "single profile" in first:
        lines += ["", "And during the single-event load:", ""]
        lines += [f"- {pct:.1f}% {name}" for name, pct in top_frames(first["single profile"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
