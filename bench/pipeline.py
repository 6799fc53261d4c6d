"""What the pipeline of issue 3 costs ingest, and how fast forwarders deliver.

    python bench/pipeline.py [--duration 10] [--connections 64] [--rounds 2] [--events 100000]

1. Ingest with a realistic configuration against ingest without one, in the same run: a
   tracking plan of 20 events (the benchmark's event among them), 3 transformations that touch
   every event, and 2 destinations (a webhook and PostgreSQL) delivering while the load runs.
   Each round starts a fresh `roost serve` per variant, alternating, and runs wrk against
   single events and 100-event batches; the table has the median of the rounds.
2. Forwarder throughput: N events stored first, then one destination at a time replays them
   from offset 1; events/s is N over the time until `GET /api/v1/destinations` reports them
   all delivered.

PostgreSQL comes from the machine's binaries (initdb/pg_ctl, fsync on); without them the
second destination is another webhook and the PostgreSQL throughput is not measured. The
webhook sink and PostgreSQL stand in for other machines, so they run at nice 10 on these
shared cores; Roost's forwarders run in their own process at nice 10 too (the default).
Appends a dated section to bench/RESULTS.md unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from run import (
    ROOT,
    Process,
    batch_body,
    free_port,
    lua_script,
    publish,
    roost_cli,
    track_body,
    wrk,
)
from run import wait_ready as wait_up

sys.path.insert(0, str(ROOT.parent))
from tests.integration.services import Postgres, postgres_bin

EVENTS = [
    "Order Completed", "Product Viewed", "Product Added", "Product Removed", "Cart Viewed",
    "Checkout Started", "Checkout Step Viewed", "Payment Info Entered", "Coupon Applied",
    "Order Refunded", "Products Searched", "Product List Viewed", "Signed Up", "Signed In",
    "Signed Out", "Account Deleted", "Trial Started", "Subscription Upgraded", "Invite Sent",
    "Feedback Submitted",
]  # fmt: skip


def tracking_plan() -> list[dict[str, Any]]:
    """Twenty planned events; the one the benchmark sends is checked field by field."""
    order = {
        "type": "object",
        "required": ["order_id", "revenue", "currency"],
        "properties": {
            "order_id": {"type": "string", "minLength": 1},
            "revenue": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "items": {"type": "integer", "minimum": 1},
        },
    }
    other = {
        "type": "object",
        "properties": {
            "product_id": {"type": "string"},
            "price": {"type": "number"},
            "query": {"type": "string"},
        },
    }
    return [
        {"target": name, "action": "block", "schema": order if i == 0 else other}
        for i, name in enumerate(EVENTS)
    ]


def configuration(hook: str, second: dict[str, Any]) -> dict[str, Any]:
    return {
        "project": "bench",
        "unplanned": "flag",
        "contracts": tracking_plan(),
        "transformations": [
            {
                "step": "rename_property",
                "from": "currency",
                "to": "currency_code",
                "when": {"field": "event", "equals": "Order Completed"},
            },
            {"step": "set_property", "name": "order_label", "value": "{properties.order_id}"},
            {"step": "filter", "when": {"field": "properties.internal", "equals": True}},
        ],
        "destinations": [
            {"name": "hook", "kind": "webhook", "url": hook, "secret": "s3cret"},
            second,
        ],
    }


def setup(work: Path, name: str, config: dict[str, Any] | None) -> tuple[Path, dict[str, str]]:
    data = work / name
    roost_cli(data, "projects", "create", "bench")
    keys = {
        kind: json.loads(
            roost_cli(data, "keys", "create", "--project", "bench", "--kind", kind, "--json")
        )["key"]
        for kind in ("write", "read", "admin")
    }
    if config is not None:
        path = work / f"{name}.yaml"
        path.write_text(json.dumps(config))
        roost_cli(data, "config", "apply", str(path))
    return data, keys


def serve(data: Path) -> tuple[Process, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process(
        [sys.executable, "-m", "roost", "serve", "--data", str(data), "--port", str(port)],
        {"ROOST_LOG_LEVEL": "warning"},
    )
    wait_up(url, "/readyz")
    return server, url


def destinations(url: str, read: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(
        url + "/api/v1/destinations", headers={"Authorization": f"Bearer {read}"}, timeout=30
    )
    response.raise_for_status()
    return {d["name"]: d for d in response.json()["destinations"]}


def ingest_round(
    work: Path, name: str, config: dict[str, Any] | None, args: argparse.Namespace
) -> dict[str, Any]:
    data, keys = setup(work, name, config)
    single = lua_script(work, track_body(), keys["write"])
    batch = lua_script(work, batch_body(), keys["write"])
    server, url = serve(data)
    try:
        wrk(url + "/v1/track", single, 2, args.connections)  # warm up
        out: dict[str, Any] = {
            "single": wrk(url + "/v1/track", single, args.duration, args.connections),
            "batch": wrk(url + "/v1/batch", batch, args.duration, args.connections),
        }
        if config is not None:
            out["destinations"] = destinations(url, keys["read"])
    finally:
        server.stop()
    shutil.rmtree(data, ignore_errors=True)
    return out


def forwarder_throughput(
    work: Path, targets: dict[str, dict[str, Any]], events: int
) -> dict[str, float]:
    data, keys = setup(work, "forward", None)
    server, url = serve(data)
    rates: dict[str, float] = {}
    try:
        body = batch_body()
        with httpx.Client(base_url=url, timeout=60) as client:
            auth = {"Authorization": f"Bearer {keys['write']}"}
            for _ in range(events // 100):
                client.post("/v1/batch", content=body, headers=auth).raise_for_status()
            admin = {"Authorization": f"Bearer {keys['admin']}"}
            for name, spec in targets.items():
                client.put(
                    f"/api/v1/admin/destinations/{name}", json=spec, headers=admin
                ).raise_for_status()
                started = time.perf_counter()
                client.post(
                    f"/api/v1/admin/destinations/{name}/replay",
                    json={"from_offset": 1},
                    headers=admin,
                ).raise_for_status()
                deadline = started + 600
                while time.perf_counter() < deadline:
                    state = destinations(url, keys["read"])[name]
                    if state["delivered"] >= events and state["lag"] == 0:
                        rates[name] = events / (time.perf_counter() - started)
                        break
                    time.sleep(0.05)
                else:
                    raise RuntimeError(f"{name} did not deliver {events} events: {state}")
                client.delete(f"/api/v1/admin/destinations/{name}", headers=admin)
    finally:
        server.stop()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="roost-bench-pipeline-"))
    sink_port = free_port()
    # The destinations stand in for other machines: niced, they take only the CPU Roost leaves.
    sink = Process(["nice", "-n", "10", sys.executable, str(ROOT / "sink.py"), str(sink_port)])
    hook = f"http://127.0.0.1:{sink_port}/hook"
    pg = Postgres(fsync=True, nice=10).start() if postgres_bin() else None
    second: dict[str, Any] = (
        {"name": "warehouse", "kind": "postgres", "dsn": pg.dsn, "schema": "bench"}
        if pg
        else {"name": "warehouse", "kind": "webhook", "url": hook}
    )
    rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "configured": []}
    try:
        for i in range(args.rounds):
            rounds["plain"].append(ingest_round(work, f"plain-{i}", None, args))
            rounds["configured"].append(
                ingest_round(work, f"configured-{i}", configuration(hook, second), args)
            )
        targets: dict[str, dict[str, Any]] = {"webhook": {"kind": "webhook", "url": hook}}
        if pg:
            targets["postgres"] = {"kind": "postgres", "dsn": pg.dsn, "schema": "throughput"}
        rates = forwarder_throughput(work, targets, args.events)
    finally:
        sink.stop()
        if pg:
            pg.stop()
    report = render(args, rounds, rates, postgres=pg is not None)
    publish(report, record=not args.no_record)
    shutil.rmtree(work, ignore_errors=True)


def render(
    args: argparse.Namespace,
    rounds: dict[str, list[dict[str, Any]]],
    rates: dict[str, float],
    postgres: bool,
) -> str:
    def median(variant: str, load: str, field: str) -> float:
        return statistics.median(r[load][field] for r in rounds[variant])

    def each(variant: str, load: str, scale: int) -> str:
        return ", ".join(f"{r[load]['rps'] * scale:,.0f}" for r in rounds[variant])

    command = (
        f"python bench/pipeline.py --duration {args.duration} --connections {args.connections} "
        f"--rounds {args.rounds} --events {args.events}"
    )
    second = "PostgreSQL (fsync on)" if postgres else "a second webhook (no PostgreSQL here)"
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — pipeline — `{command}`\n",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; wrk -t2 -c{args.connections}, Roost, the webhook sink and "
        "PostgreSQL on the same cores. Configured: a tracking plan of 20 events (`block`), 3 "
        f"transformations, 2 destinations (a webhook and {second}) delivering during the load.\n",
        "| measurement | without pipeline config | with it | with / without | target |",
        "|---|---|---|---|---|",
    ]
    for load, label, scale in (
        ("single", "single-event POST /v1/track, req/s", 1),
        ("batch", "100-event batches, events/s", 100),
    ):
        plain, configured = median("plain", load, "rps"), median("configured", load, "rps")
        lines.append(
            f"| {label} (median; rounds: {each('plain', load, scale)} / "
            f"{each('configured', load, scale)}) | {plain * scale:,.0f} | "
            f"{configured * scale:,.0f} | {configured / plain:.0%} | ≥ 80% |"
        )
        lines.append(
            f"| {load} p50 / p99 latency | {median('plain', load, 'p50_ms'):.1f} / "
            f"{median('plain', load, 'p99_ms'):.1f} ms | "
            f"{median('configured', load, 'p50_ms'):.1f} / "
            f"{median('configured', load, 'p99_ms'):.1f} ms | | |"
        )
    lines.append("")
    for i, r in enumerate(rounds["configured"]):
        state = ", ".join(
            f"{name} delivered {d['delivered']:,}, lag {d['lag']:,}, failures {d['failures']}"
            for name, d in r["destinations"].items()
        )
        lines.append(f"Configured round {i + 1}, when the load stopped: {state}.")
    lines += [
        "",
        f"Forwarder throughput, {args.events:,} stored events replayed from offset 1 to one "
        "destination at a time (default batching, 500 events):",
        "",
    ]
    lines += [f"- {name}: {rate:,.0f} events/s" for name, rate in rates.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
