"""`roost worker`: the Log's consumers in a process of their own, for a cluster.

Start as many as you like; one takes the lease and runs the Loader, profiles and the
forwarders, the others stand by and one takes over within a second of its death. The new one
first drops whatever the dead one inserted into ClickHouse without recording it
(`Warehouse.take_over`), then resumes every consumer from its stored cursor. A worker that
loses its lease (its metadata connection broke, so another may have taken over) stops at
once without finishing, leaving the rest to the new holder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import sqlalchemy as sa

from roost.config import Settings
from roost.consumers.debugger import Debugger
from roost.consumers.group import Consumers
from roost.consumers.inflight import Inflight
from roost.consumers.lease import Lease, keep, lease_for, wait_for
from roost.errors import BackendError
from roost.storage.backends import open_log, open_warehouse, require_cluster
from roost.storage.metadata import Metadata
from roost.storage.metadata.destinations import DestinationStore
from roost.storage.metadata.profiles import ProfileStore
from roost.storage.metadata.settings import AudienceDefinitions, ProjectSettings

log = logging.getLogger("roost.consumers.worker")
LEASE = "consumers"
RETRY_SECONDS = 1.0


class Worker:
    def __init__(self, settings: Settings) -> None:
        require_cluster(settings, "roost worker")
        self.settings = settings
        self.stopping = threading.Event()
        self.lease: Lease = lease_for(settings.resolved_metadata_url(), settings.data_dir, LEASE)

    def run(self) -> int:
        """Stand by, then work until stopped (0) or the lease is lost (1)."""
        if not wait_for(self.lease, self.stopping):
            return 0
        log.info("worker took the lease: running the loader, profiles and forwarders")
        while (opened := self._open()) is None:  # the stores are unreachable for now
            if self.stopping.wait(RETRY_SECONDS):
                self.lease.release()
                return 0
            if not self.lease.held():
                log.error("worker lost its lease before it could start")
                return 1
        consumers, stores = opened
        if not keep(self.lease, self.stopping):
            log.error("worker lost its lease; stopping at once so the new holder alone works")
            os._exit(1)  # no finishing: another worker may be loading already
        consumers.stop()
        stores.close()
        self.lease.release()
        log.info("worker stopped; its consumers' cursors are saved")
        return 0

    def _open(self) -> tuple[Consumers, contextlib.ExitStack] | None:
        """The consumers, caught up and running, and what closes their stores; None (all
        closed again) if a store cannot be reached now — a JetStream cluster electing a
        leader, ClickHouse restarting."""
        with contextlib.ExitStack() as undo:  # what was opened, closed again on failure
            try:
                metadata = Metadata(self.settings.resolved_metadata_url())
                undo.callback(metadata.close)
                events_log = open_log(self.settings)
                undo.callback(events_log.close_sync)
                warehouse = open_warehouse(self.settings)
                undo.callback(warehouse.close)
                resumed = warehouse.take_over()
                audiences = AudienceDefinitions(
                    ProjectSettings(metadata.engine), self.settings.key_cache_seconds
                )
                consumers = Consumers(
                    self.settings, events_log, warehouse, ProfileStore(metadata.engine),
                    DestinationStore(metadata.engine), Debugger(), Inflight(0),
                    forwarders_in="thread", audiences=audiences,
                )  # fmt: skip
                recovered = consumers.catch_up()
            except (BackendError, sa.exc.OperationalError) as exc:
                log.warning("worker cannot reach its stores yet (%s); trying again", exc)
                return None
            stores = undo.pop_all()
        consumers.start()
        log.info("worker running", extra={"resumed_at": resumed, "recovered": recovered})
        return consumers, stores

    def stop(self) -> None:
        self.stopping.set()
