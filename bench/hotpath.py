"""Where an ingest request's Python time goes, phase by phase, in one process: no HTTP, no
disk, no other thread busy — the cost the event loop pays per event before the Log's commit.

    python bench/hotpath.py [--events 100] [--requests 3000] [--rounds 3]

The body is bench/run.py's (a Segment track event with a user agent, an IP and a page URL),
in a batch of `--events`, or alone with `--events 1`. Prints µs per event for each phase, the
median of the rounds. For comparing a change before and after, not for RESULTS.md's targets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roost.config import Settings
from roost.dialects.base import IngestRequest
from roost.pipeline.batch import Batch
from roost.runtime import Runtime
from roost.web import ingest
from run import batch_body, track_body

_encode = msgspec.json.Encoder().encode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    single = args.events == 1
    body = track_body() if single else batch_body(args.events)
    path = "/v1/track" if single else "/v1/batch"
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(Settings(data=tmp, log_format="text", forwarders="thread")).open()
        try:
            runtime.metadata.ensure_default("enterprise")
            _, key = runtime.metadata.create_key("default", "write")
            headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
            dialect = ingest.PATHS[path] or ingest.SEGMENT
            rounds: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                spent = dict.fromkeys(("parse", "key", "pipeline", "encode", "respond"), 0.0)
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    request = IngestRequest(
                        path=path, headers=headers, body=body, client_ip="198.51.100.7",
                        received_at=datetime.now(UTC), max_event_bytes=32768,
                        max_clock_skew=timedelta(days=1),
                    )  # fmt: skip
                    parsed = dialect.parse(request)
                    t1 = time.perf_counter()
                    batch = Batch.of(dialect.name, runtime.keys.find(parsed.key), parsed)
                    t2 = time.perf_counter()
                    runtime.pipeline.run(batch)
                    t3 = time.perf_counter()
                    _encode(batch.events)
                    t4 = time.perf_counter()
                    runtime.pipeline.settle(batch, stored=True)
                    dialect.respond(ingest.Result(
                        total=parsed.total, single=parsed.single, stored=batch.events,
                        outcomes=batch.outcomes, received_at=request.received_at,
                    ))  # fmt: skip
                    t5 = time.perf_counter()
                    for name, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4),
                                             strict=True):  # fmt: skip
                        spent[name] += seconds
                n = args.requests * args.events
                for name, seconds in spent.items():
                    rounds.setdefault(name, []).append(seconds / n * 1e6)
        finally:
            runtime.close_sync()
    total = 0.0
    print(f"{args.events}-event requests × {args.requests}, median of {args.rounds} rounds")
    for name, values in rounds.items():
        median = statistics.median(values)
        total += median
        print(f"  {name:<9} {median:7.2f} µs/event")
    print(f"  {'total':<9} {total:7.2f} µs/event  (≈ {1e6 / total:,.0f} events/s on one core)")


if __name__ == "__main__":
    main()
