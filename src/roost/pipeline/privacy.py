"""Drop the IP: once geo and the visitor hash have used it, no IP goes any further.

A project that opted in (`store_ip`) keeps it in `context.ip`; no other project does, even
if the client put one there.
"""

from __future__ import annotations

from roost.pipeline.batch import Batch


class DropIP:
    def __call__(self, batch: Batch) -> None:
        keep = batch.project_key.store_ip
        for event in batch.events:
            if keep and event.ip:
                event.context = {**event.context, "ip": event.ip}
            elif "ip" in event.context:
                context = dict(event.context)  # may be shared by a batch's events
                del context["ip"]
                event.context = context
            event.ip = None
