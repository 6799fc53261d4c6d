"""Cluster mode's throughput and lag, beside the embedded default's, on this machine.

    python bench/cluster.py [--duration 10] [--connections 64] [--nats 3] [--no-record]

For one and then two ingest nodes (each a `roost serve` on JetStream, ClickHouse and
PostgreSQL, with two `roost worker`s, started by roost/devtools/cluster.py as `roost cluster up` does),
wrk posts 100-event batches for `--duration` seconds — two wrk processes, aimed at the one
node or one at each of the two (a load balancer's split) — while a probe measures the lag
from an event's acknowledgement to the moment it is in ClickHouse. The embedded default
(one `roost serve` on SQLite and DuckDB) takes the same load, its lag measured to the moment
its SQL endpoint sees the event. Appends a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from roost.devtools.cluster import LocalCluster
from roost.storage.log.jetstream import NatsLogReader
from run import (
    batch_body,
    freshness,
    lua_script,
    publish,
    roost_cli,
    start_roost,
    wait_ready,
    wrk,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load(urls: list[str], script: Path, duration: int, connections: int) -> dict[str, float]:
    """Two wrk processes at once, the first at urls[0], the second at urls[-1]."""
    targets = [urls[0], urls[-1]]
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(lambda u: wrk(u + "/v1/batch", script, duration, connections // 2), targets)
        )
    requests = sum(r["requests"] for r in runs)
    seconds = max(r["seconds"] for r in runs)
    return {
        "events_per_s": requests * 100 / seconds,
        "p99_ms": max(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] + r["non2xx"] for r in runs),
    }


async def clickhouse_lag(
    ingest: str, clickhouse: str, write: str, project: int, seconds: float, pause: float = 0.1
) -> list[float]:
    """Seconds from acknowledgement to the row being in ClickHouse's table, looked up by the
    table's whole key (project, day, messageId) so the probe costs ClickHouse next to nothing:
    with a range on the day (`>= yesterday()`) it read every messageId of the day, 50 times a
    second, and was most of ClickHouse's CPU in the table below."""
    gaps = []
    async with httpx.AsyncClient(timeout=30) as client:
        until = time.monotonic() + seconds  # while the load runs, not after
        while time.monotonic() < until:
            mid = uuid.uuid4().hex
            answer = await client.post(
                f"{ingest}/v1/track",
                json={"userId": "probe", "event": "Lag", "messageId": mid},
                headers={"Authorization": f"Bearer {write}"},
            )
            acked = time.perf_counter()
            assert answer.status_code == 200, answer.text
            sql = (
                f"SELECT count() FROM roost.events WHERE project_id = {project} "
                f"AND toDate(timestamp) IN (yesterday(), today()) AND message_id = '{mid}'"
            )
            while (await client.post(clickhouse, content=sql)).text.strip() != "1":
                await asyncio.sleep(0.1)  # each ask costs ClickHouse ~3 ms: few of them
            gaps.append(time.perf_counter() - acked)
            await asyncio.sleep(pause)
    return gaps


def clickhouse_pressure(cluster: LocalCluster) -> dict[str, float]:
    """How hard the loads pressed ClickHouse: inserts it delayed for too many parts, and the
    most active parts a partition had at the end."""
    delayed = cluster.clickhouse_sql(
        "SELECT sum(value) FROM system.events WHERE event IN ('DelayedInserts', 'RejectedInserts')"
    )
    parts = cluster.clickhouse_sql(
        "SELECT max(c) FROM (SELECT partition, count() AS c FROM system.parts "
        "WHERE database = 'roost' AND table = 'events' AND active GROUP BY partition)"
    )
    return {"delayed_inserts": float(delayed.strip() or 0), "parts": float(parts.strip() or 0)}


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every process under it, running or already reaped
    (PostgreSQL's backends, `roost serve`'s forwarders child)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / TICKS  # utime stime cutime cstime
        for task in tasks:
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def components(cluster: LocalCluster) -> dict[str, list[int]]:
    """The pids of each kind of process in the cluster."""
    postmaster = int((cluster.postgres.dir / "data" / "postmaster.pid").read_text().split()[0])
    pids = lambda processes: [p.pid for p in processes if p is not None]  # noqa: E731
    return {
        "ingest node": pids(n.process for n in cluster.ingest),
        "nats-server": pids(n.process for n in cluster.nats.nodes),
        "worker": pids(w.process for w in cluster.workers),
        "ClickHouse": pids([cluster.clickhouse.process]),
        "PostgreSQL": [postmaster],
    }


def cpu_by_component(cluster: LocalCluster) -> dict[str, float]:
    return {kind: sum(tree_cpu(p) for p in pids) for kind, pids in components(cluster).items()}


def loaded_offset(cluster: LocalCluster) -> int:
    """The offset ClickHouse holds every event up to."""
    return int(cluster.clickhouse_sql("SELECT max(loaded_offset) FROM roost.loads").strip() or 0)


def stored_events(cluster: LocalCluster) -> int:
    return int(cluster.clickhouse_sql("SELECT count() FROM roost.events").strip() or 0)


def last_offset(cluster: LocalCluster) -> int:
    reader = NatsLogReader(cluster.env["ROOST_LOG_URL"])
    try:
        return reader.last_offset()
    finally:
        reader.close_sync()


def worker_catch_up(
    cluster: LocalCluster, urls: list[str], script: Path, args: argparse.Namespace
) -> dict[str, float]:
    """With the workers stopped, ingest for `--duration`; then one worker alone loads the
    backlog into ClickHouse: its events/s and CPU seconds per million events."""
    for worker in cluster.workers:
        worker.stop()
    alone = load(urls, script, args.duration, args.connections)
    start, last = stored_events(cluster), last_offset(cluster)
    worker = cluster.workers[0]
    worker.start()
    assert worker.process is not None
    began = time.perf_counter()
    cpu = tree_cpu(worker.process.pid)
    while (loaded := loaded_offset(cluster)) < last:  # one cheap ClickHouse lookup a time
        if time.perf_counter() - began > 600:
            raise RuntimeError(f"the worker loaded {loaded} of {last} in 10 minutes")
        time.sleep(0.05)
    seconds = time.perf_counter() - began
    cpu = tree_cpu(worker.process.pid) - cpu
    events = stored_events(cluster) - start  # offsets are not dense on JetStream: count rows
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "cpu_s_per_million": cpu / events * 1e6,
            "ingest_alone_per_s": alone["events_per_s"]}  # fmt: skip


def measure_cluster(
    work: Path, ingest: int, args: argparse.Namespace
) -> tuple[dict[str, float], list[float]]:
    cluster = LocalCluster(
        work / f"cluster{ingest}", ingest=ingest, workers=2, nats_nodes=args.nats,
        extra_env={"ROOST_LOG_LEVEL": "warning"},
    )  # fmt: skip
    cluster.start()
    try:
        urls = [node.url for node in cluster.ingest]
        script = lua_script(work, batch_body(), cluster.write_key)
        load(urls, script, 2, args.connections)  # warm up
        clickhouse = f"http://127.0.0.1:{cluster.clickhouse.port}/"

        spent: dict[str, float] = {}

        def measured() -> dict[str, float]:
            figures = load(urls, script, args.duration, args.connections)
            spent.update(cpu_by_component(cluster))  # as the load ends: the probe may go on
            return figures

        async def both() -> tuple[dict[str, float], list[float]]:
            running = asyncio.to_thread(measured)
            probe = clickhouse_lag(
                urls[0], clickhouse, cluster.write_key, cluster.project_id, args.duration
            )
            return await asyncio.gather(running, probe)

        before = cpu_by_component(cluster)
        figures, gaps = asyncio.run(both())
        events = figures["events_per_s"] * args.duration
        for kind, seconds in spent.items():
            figures[f"cpu:{kind}"] = (seconds - before[kind]) / events * 1e6
        figures.update(clickhouse_pressure(cluster))
        if ingest == 1:
            for name, value in worker_catch_up(cluster, urls, script, args).items():
                figures[f"catch_up:{name}"] = value
        return figures, gaps
    finally:
        cluster.stop()


def measure_embedded(work: Path, args: argparse.Namespace) -> tuple[dict[str, float], list[float]]:
    data = work / "embedded"
    roost_cli(data, "projects", "create", "bench")
    write, read = (
        json.loads(
            roost_cli(data, "keys", "create", "--project", "bench", "--kind", kind, "--json")
        )["key"]
        for kind in ("write", "read")
    )
    server, url = start_roost(data)
    try:
        wait_ready(url, "/readyz")
        script = lua_script(work, batch_body(), write)
        load([url], script, 2, args.connections)

        async def both() -> tuple[dict[str, float], list[float]]:
            running = asyncio.to_thread(load, [url], script, args.duration, args.connections)
            probe = freshness(url, write, read, args.duration * 8)
            return await asyncio.gather(running, probe)

        return asyncio.run(both())
    finally:
        server.terminate()
        server.wait(60)


def render(args: argparse.Namespace, rows: dict[str, tuple[dict[str, float], list[float]]]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/cluster.py " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k not in ("no_record", "keep")
    )
    lines = [
        f"\n## {stamp} — cluster — `{command}`\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Every process (wrk, Roost, NATS ×{args.nats}, "
        "ClickHouse, PostgreSQL) shares these cores.\n",
        "| setup | events/s (100-event batches) | p99 ms | errors | lag p50 s | lag p95 s "
        "| lag max s | ClickHouse inserts delayed / most parts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (figures, gaps) in rows.items():
        pressure = (
            f"{figures['delayed_inserts']:.0f} / {figures['parts']:.0f}"
            if "parts" in figures
            else "–"
        )
        lines.append(
            f"| {name} | {figures['events_per_s']:,.0f} | {figures['p99_ms']:.1f} "
            f"| {figures['errors']:.0f} | {statistics.median(gaps):.3f} "
            f"| {percentile(gaps, 0.95):.3f} | {max(gaps):.3f} | {pressure} |"
        )
    lines.append(
        "\nCPU seconds per million acknowledged events, by component, during the load above "
        "(all processes of a kind together: 3 nats-servers, 2 workers of which one holds the "
        "lease; PostgreSQL with its backends):\n"
    )
    kinds = [k.split(":", 1)[1] for k in rows["cluster, 1 ingest node"][0] if k.startswith("cpu:")]
    lines.append("| setup | " + " | ".join(kinds) + " |")
    lines.append("|---|" + "---|" * len(kinds))
    for name, (figures, _) in rows.items():
        if f"cpu:{kinds[0]}" in figures:
            cells = " | ".join(f"{figures[f'cpu:{k}']:.1f}" for k in kinds)
            lines.append(f"| {name} | {cells} |")
    catch = rows["cluster, 1 ingest node"][0]
    lines.append(
        f"\nOne worker alone loading a backlog of {catch['catch_up:events']:,.0f} events into "
        f"ClickHouse (the workers stopped during a {args.duration} s load, then one started): "
        f"{catch['catch_up:events_per_s']:,.0f} events/s, "
        f"{catch['catch_up:cpu_s_per_million']:.1f} CPU seconds per million events "
        "(target: 150,000 events/s). The ingest node meanwhile, with no worker or ClickHouse "
        f"work beside it: {catch['catch_up:ingest_alone_per_s']:,.0f} events/s.\n"
    )
    one = rows["cluster, 1 ingest node"][0]["events_per_s"]
    two = rows["cluster, 2 ingest nodes"][0]["events_per_s"]
    lines.append(f"\nTwo ingest nodes / one: {two / one:.2f}× (target ≥ 1.8×).\n")
    lines.append(
        "Lag: cluster rows, acknowledgement to the row in ClickHouse's table; embedded row, "
        "acknowledgement to the SQL endpoint answering with it.\n"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--nats", type=int, default=3, help="JetStream nodes (replicas ≤ 3)")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' logs; say where")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="roost-bench-cluster-"))
    rows = {
        "embedded (SQLite Log, DuckDB)": measure_embedded(work, args),
        "cluster, 1 ingest node": measure_cluster(work, 1, args),
        "cluster, 2 ingest nodes": measure_cluster(work, 2, args),
    }
    publish(render(args, rows), record=not args.no_record)
    if args.keep:
        print(f"the nodes' logs: {work}/cluster*/")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v[0] for k, v in rows.items()}))


if __name__ == "__main__":
    main()
