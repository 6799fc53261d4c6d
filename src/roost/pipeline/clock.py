"""Clock skew: `timestamp = receivedAt - (sentAt - originalTimestamp)`.

A device's clock may be off by hours; the difference between when it says it sent a request
(`sentAt`) and when an event happened (`originalTimestamp`) is still right, so that gap is
measured back from the server's own clock. Without `sentAt` the client's time is taken as
it is, and without either the server's.
"""

from __future__ import annotations

from roost.model import Event
from roost.pipeline.batch import Batch, Verdict


class ClockSkew:
    def __call__(self, batch: Batch) -> None:
        def verdict(index: int, event: Event) -> Verdict:
            original, sent = event.original_timestamp, event.sent_at
            try:
                if original is not None and sent is not None:
                    event.timestamp = event.received_at - (sent - original)
                elif original is not None:
                    event.timestamp = original
                else:
                    event.timestamp = event.received_at
            except OverflowError:
                field = batch.field(index, "timestamp")
                return "invalid_request", f"{field}: the corrected time is out of range", field, 400
            return None

        batch.keep(verdict)
