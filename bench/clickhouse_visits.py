"""Visit reports on the ClickHouse Warehouse, which keeps no visits: each query makes them from
the events (Flavor.visits_of) — against the runs of events the reports counted before
(issue 18). Starts clickhouse-server, loads 1 M generated pageviews of 40,000 visitors over
28 days, and prints the median of three asks of each (not recorded automatically).

    python bench/clickhouse_visits.py
"""

import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import msgspec

from roost.devtools.servers import ClickHouse
from roost.model import Event
from roost.query.reports import REPORTS
from roost.query.stats import NOT_BOT
from roost.storage.warehouse.clickhouse import ClickHouseWarehouse

N = 1_000_000
server = ClickHouse().start()
try:
    w = ClickHouseWarehouse(server.url)
    rng = random.Random(1)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    off = 1
    t0 = time.perf_counter()
    for chunk in range(0, N, 50_000):
        evs = []
        for n in range(chunk, chunk + 50_000):
            v = rng.randrange(40_000)
            evs.append(
                Event(
                    message_id=f"m{n}",
                    project_id=1,
                    dialect="web",
                    type="page",
                    anonymous_id=f"a{v}",
                    visitor=f"v{v}",
                    path=f"/p{rng.randrange(50)}",
                    source=rng.choice([None, "Google", "Bing"]),
                    timestamp=start + timedelta(seconds=rng.randrange(28 * 86400)),
                    received_at=start,
                )
            )
        w.load([(off, len(evs), msgspec.json.encode(evs))])
        off += len(evs)
    print(f"loaded {N} in {time.perf_counter() - t0:.1f} s")
    now = datetime(2024, 5, 29, tzinfo=UTC)
    asks = {
        "web totals": {
            "metrics": [
                "visitors",
                "visits",
                "pageviews",
                "views_per_visit",
                "bounce_rate",
                "visit_duration",
            ],
            "date_range": ["2024-05-01", "2024-05-28"],
        },
        "sources per visit": {
            "metrics": ["visitors"],
            "dimensions": ["visit:source"],
            "date_range": ["2024-05-01", "2024-05-28"],
        },
        "visitors (events)": {"metrics": ["visitors"], "date_range": ["2024-05-01", "2024-05-28"]},
        "web totals, last 7 days": {
            "metrics": ["visits", "bounce_rate"],
            "date_range": ["2024-05-22", "2024-05-28"],
        },
    }

    def timed(name: str, sql: str) -> None:
        """The median of three asks after a first."""
        times = []
        for _ in range(4):
            t = time.perf_counter()
            w.report(sql, timeout=120, max_rows=100)
            times.append(time.perf_counter() - t)
        print(f"{name}: median {statistics.median(times[1:]) * 1000:.0f} ms")

    q = REPORTS["query"]
    for name, body in asks.items():
        timed(name, q.build(q.parse(body, now), 1, w.flavor))
    people = (
        f"(SELECT * FROM {w.flavor.rows(1)} AS e WHERE visitor IS NOT NULL AND {NOT_BOT} "
        "AND timestamp >= toDateTime('2024-05-01 00:00:00', 'UTC') "
        "AND timestamp < toDateTime('2024-05-29 00:00:00', 'UTC'))"
    )
    timed("visits as runs (the way before)", w.flavor.visits(people, [], 1800))
    timed("visits_of alone", f"SELECT count(*) FROM ({w.flavor.visits_of(people, 1800)})")
    w.close()
finally:
    server.stop()
