"""The stages, in order, in one list: what happens to every event before it is stored.

Each stage takes a Batch and drops what it refuses (as outcomes) or raises a ClientError
that refuses the whole request. Stages run synchronously on the event loop, with no await
between them, so reservations (budget, dedup) are atomic; after the Log has answered,
`settle` lets them confirm or give back what they reserved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from roost.config import Settings
from roost.errors import ClientError
from roost.pipeline.authorize import Authorize
from roost.pipeline.batch import Batch, Stage
from roost.pipeline.budget import Budget, Usage
from roost.pipeline.campaign import Campaign
from roost.pipeline.consent import Consent, ConsentStrip
from roost.pipeline.contract import Contracts
from roost.pipeline.dedup import Dedup, DedupIndex
from roost.pipeline.drift import Drift
from roost.pipeline.geo import Geo
from roost.pipeline.privacy import DropIP
from roost.pipeline.ratelimit import Buckets, RateLimit
from roost.pipeline.transform import Transform
from roost.pipeline.useragent import UserAgent
from roost.pipeline.validate import Validate
from roost.pipeline.visitor import Visitor


class Pipeline:
    def __init__(self, stages: list[Stage], restore: list[Stage] | None = None) -> None:
        self.stages = stages
        self.restore = stages if restore is None else restore  # for Roost's own export
        self._settlers = {id(s): _settlers(s) for s in (self.stages, self.restore)}

    def _for(self, batch: Batch) -> list[Stage]:
        return self.restore if batch.dialect == "restore" else self.stages

    def run(self, batch: Batch) -> None:
        stages = self._for(batch)
        ran = 0
        try:
            for stage in stages:
                if not batch.events and ran:
                    break
                stage(batch)
                ran += 1
        except ClientError:
            for settle in _settlers(stages[:ran]):
                settle(batch, False)
            raise

    def settle(self, batch: Batch, stored: bool) -> None:
        for settle in self._settlers[id(self._for(batch))]:
            settle(batch, stored)


def _settlers(stages: list[Stage]) -> list[Callable[[Batch, bool], None]]:
    """The stages' `settle` methods (Settling), last stage first."""
    found = (getattr(stage, "settle", None) for stage in reversed(stages))
    return [settle for settle in found if settle is not None]


def build(
    settings: Settings,
    *,
    usage: Usage,
    dedup: DedupIndex,
    visitor: Visitor,
    geo: Geo,
    contracts: Contracts,
    consent: Consent,
    transform: Transform,
    buckets: Buckets,
    drift: Drift,
) -> Pipeline:
    rate_limit = RateLimit(
        enterprise=(settings.enterprise_rate, settings.enterprise_burst),
        enterprise_hourly=settings.enterprise_hourly,
        buckets=buckets,
    )
    validate, budget, dedup_stage = Validate(), Budget(usage), Dedup(dedup)
    return Pipeline(
        [
            Authorize(),
            rate_limit,
            validate,
            consent,
            contracts,
            ConsentStrip(),
            budget,
            UserAgent(),
            geo,
            visitor,
            Campaign(),
            DropIP(),
            dedup_stage,
            transform,
            drift,
        ],
        # Roost's own export coming back, with an admin key: checked and counted, not
        # enriched or transformed again (that ran when the events first came in)
        restore=[Authorize("admin"), rate_limit, validate, budget, dedup_stage],
    )


def dedup_index(
    settings: Settings, forgetting: Callable[[float], None] | None = None
) -> DedupIndex:
    return DedupIndex(
        timedelta(days=settings.dedup_window_days), settings.dedup_max_ids, forgetting
    )
