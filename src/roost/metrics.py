"""Prometheus metrics, named `roost_<name>_<unit>` and counted per batch, not per event."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_standard)  # CPU, memory, open files; Python's version; GC passes

LOG_LAST_OFFSET = Gauge(
    "roost_log_last_offset", "The Log's last acknowledged offset.", registry=REGISTRY
)
WAREHOUSE_BEHIND = Gauge(
    "roost_warehouse_behind_events",
    "Acknowledged events the Warehouse has not loaded yet (what queries cannot see).",
    registry=REGISTRY,
)


class DestinationBacklog:
    """Per destination, read when scraped: the events after its cursor and how long the oldest
    has waited (`source`: the running server's, set when it starts)."""

    def __init__(self) -> None:
        self.source: Callable[[], list[tuple[str, str, int, float | None]]] | None = None

    def describe(self) -> list[Any]:
        return []  # read at scrape time: nothing to declare ahead

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = self.source() if self.source is not None else []
        backlog = GaugeMetricFamily(
            "roost_destination_backlog_events",
            "Events in the Log after a destination's cursor (what it has yet to send).",
            labels=["project", "destination"],
        )
        oldest = GaugeMetricFamily(
            "roost_destination_oldest_waiting_seconds",
            "How long the oldest event after a destination's cursor has waited.",
            labels=["project", "destination"],
        )
        for project, destination, lag, waited in rows:
            backlog.add_metric([project, destination], lag)
            oldest.add_metric([project, destination], waited or 0.0)
        yield backlog
        yield oldest


DESTINATIONS = DestinationBacklog()
REGISTRY.register(DESTINATIONS)

DEDUP_IDS = Gauge(
    "roost_dedup_ids", "MessageIds the dedup index holds in memory.", registry=REGISTRY
)
DEDUP_REMEMBERED = Gauge(
    "roost_dedup_remembered_seconds",
    "How far back the dedup index knows messageIds: dedup_window_days, or less when "
    "dedup_max_ids made it forget the oldest early.",
    registry=REGISTRY,
)

EVENTS_ACCEPTED = Counter(
    "roost_events_accepted",
    "Events stored, by dialect and project.",
    ["dialect", "project"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "roost_events_rejected",
    "Events refused or dropped, by dialect and reason.",
    ["dialect", "reason"],
    registry=REGISTRY,
)
EVENTS_DEDUPLICATED = Counter(
    "roost_events_deduplicated",
    "Events acknowledged but not stored again (messageId seen before), by dialect and project.",
    ["dialect", "project"],
    registry=REGISTRY,
)
INGEST_LINK_REQUESTS = Counter(
    "roost_ingest_link_requests_total",
    "Ingest requests another ingest process read and this server answered (ingest_processes).",
    registry=REGISTRY,
)
INGEST_REQUEST_SECONDS = Histogram(
    "roost_ingest_request_seconds",
    "Time from the start of an ingest request to its answer, by dialect and status.",
    ["dialect", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
LOG_COMMIT_SECONDS = Histogram(
    "roost_log_commit_seconds",
    "Time of one group commit of the Log (acknowledgements wait for it).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
WAREHOUSE_LOAD_SECONDS = Histogram(
    "roost_warehouse_load_seconds",
    "Time of one load of events from the Log into the Warehouse.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
WAREHOUSE_LOAD_ERRORS = Counter(
    "roost_warehouse_load_errors",
    "Loads into the Warehouse that failed and will be retried (the events stay in the Log).",
    registry=REGISTRY,
)
WAREHOUSE_CHECKPOINT_SECONDS = Histogram(
    "roost_warehouse_checkpoint_seconds",
    "Time of one checkpoint of the embedded warehouse, run by the loader between loads.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
LOG_PUBLISH_RETRIES = Counter(
    "roost_log_publish_retries",
    "Events published to JetStream again because their acknowledgement did not come.",
    registry=REGISTRY,
)
LOG_BATCH_EVENTS = Histogram(
    "roost_log_batch_events",
    "Events per group commit.",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000),
    registry=REGISTRY,
)


def count_rejections(dialect: str, reasons: Tally[str]) -> None:
    for reason, n in reasons.items():
        EVENTS_REJECTED.labels(dialect, reason).inc(n)


CONTRACT_VIOLATIONS = Counter(
    "roost_contract_violations",
    "Tracking-plan violations, by project, event (or type:<call>) and rule.",
    ["project", "event", "rule"],
    registry=REGISTRY,
)
BUDGET_NOTICES = Counter(
    "roost_budget_notices",
    "Budget notices sent, by workspace and threshold (80 or 100 percent).",
    ["workspace", "threshold"],
    registry=REGISTRY,
)
TRANSFORMATION_FAILURES = Counter(
    "roost_transformation_failures",
    "Events stored untransformed because a transformation step raised, by project and step.",
    ["project", "step"],
    registry=REGISTRY,
)
DELIVERED = Counter(
    "roost_delivered_events",
    "Events a destination accepted, by destination.",
    ["destination"],
    registry=REGISTRY,
)
SKIPPED = Counter(
    "roost_destination_skipped_events",
    "Events a destination would take that the event itself opted out of, by destination "
    "and reason (Segment's `integrations`).",
    ["destination", "reason"],
    registry=REGISTRY,
)
DELIVERY_FAILURES = Counter(
    "roost_delivery_failures",
    "Delivery attempts that failed, by destination and whether they will be retried.",
    ["destination", "retry"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "roost_dead_letter_events",
    "Events set aside as dead letters after their last try, by destination.",
    ["destination"],
    registry=REGISTRY,
)
