"""Validate: the rules of the canonical event that hold whatever the dialect."""

from __future__ import annotations

from roost.model import EVENT_TYPES, Event, Reason
from roost.pipeline.batch import Batch, Refusal, Verdict

MAX_MESSAGE_ID = 100


class Validate:
    def __call__(self, batch: Batch) -> None:
        for event in batch.events:  # the common case, without a verdict per event
            if event.type not in EVENT_TYPES or not 0 < len(event.message_id) <= MAX_MESSAGE_ID:
                break
        else:
            return

        def verdict(index: int, event: Event) -> Verdict:
            if event.type not in EVENT_TYPES:
                field = batch.field(index, "type")
                return Refusal(
                    Reason.INVALID_REQUEST,
                    f"{field}: must be one of {', '.join(EVENT_TYPES)}",
                    field,
                    400,
                )
            if not 0 < len(event.message_id) <= MAX_MESSAGE_ID:
                field = batch.field(index, "messageId")
                return Refusal(
                    Reason.INVALID_REQUEST,
                    f"{field}: must be 1–{MAX_MESSAGE_ID} characters",
                    field,
                    400,
                )
            return None

        batch.keep(verdict)
