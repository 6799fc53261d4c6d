"""Batch.keep: refused events become outcomes, the rest keep their order and indexes."""

from __future__ import annotations

from datetime import UTC, datetime

from roost.dialects.base import Parsed
from roost.model import Event
from roost.pipeline.batch import Batch, Verdict


def test_keep_turns_refusals_into_outcomes_in_order() -> None:
    now = datetime.now(UTC)
    parsed = Parsed(key=None, total=6, single=False, prefix="batch")
    for i in range(6):
        parsed.add(
            i,
            Event(
                message_id=f"m{i}",
                project_id=1,
                dialect="t",
                type="track",
                timestamp=now,
                received_at=now,
            ),
        )
    batch = Batch.of("t", None, parsed)

    def odd(index: int, event: Event) -> Verdict:
        return (
            ("invalid_request", f"{index} is odd", batch.field(index, "x"), 400)
            if index % 2
            else None
        )

    batch.keep(odd)
    assert batch.indexes == [0, 2, 4]
    assert [e.message_id for e in batch.events] == ["m0", "m2", "m4"]
    assert [(o.index, o.field, o.stored) for o in batch.outcomes] == [
        (1, "batch[1].x", False),
        (3, "batch[3].x", False),
        (5, "batch[5].x", False),
    ]
    before = batch.events
    batch.keep(lambda index, event: None)
    assert batch.events is before  # nothing refused: nothing rebuilt
    batch.keep(lambda index, event: ("duplicate", "seen", None, 200))
    assert batch.events == [] and [o.stored for o in batch.outcomes[-3:]] == [True, True, True]
