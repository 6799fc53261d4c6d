"""The Log's consumers, run together: the Loader, profiles, audiences and the forwarders.

One machine runs them inside `roost serve` (the embedded default); a cluster runs them in
`roost worker`, one active worker at a time (roost/consumers/lease.py). Either way the same object
starts them, catches them up and stops them; each keeps its cursor beside its effect (the
Warehouse's loaded offset, the profiles' and forwarders' cursors in the metadata), so a
consumer resumes exactly where the last one stopped, whichever process that was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from roost.config import Settings
from roost.consumers.audiences import AudiencesConsumer
from roost.consumers.debugger import Debugger
from roost.consumers.forwarder import Forwarders, reporter
from roost.consumers.forwarder_process import ForwarderProcess
from roost.consumers.inflight import Inflight
from roost.consumers.loader import Loader
from roost.consumers.profiles import ProfilesConsumer
from roost.errors import BadRequest
from roost.storage.log import Log
from roost.storage.metadata.audiences import Audience, AudienceStore
from roost.storage.metadata.destinations import DestinationStore
from roost.storage.metadata.profiles import ProfileStore
from roost.storage.warehouse import Warehouse

log = logging.getLogger("roost")
LINKS_CHECK_SECONDS = 1.0


class Consumers:
    def __init__(
        self,
        settings: Settings,
        log: Log,
        warehouse: Warehouse,
        profiles: ProfileStore,
        destinations: DestinationStore,
        debugger: Debugger,
        inflight: Inflight,
        *,
        forwarders_in: str,
        loaded: Callable[[], None] | None = None,
        audiences: Callable[[], dict[int, list[Audience]]] | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.warehouse = warehouse
        self.profiles = ProfilesConsumer(log, profiles)
        self.audiences = AudiencesConsumer(
            log, AudienceStore(profiles.engine), profiles, audiences or dict,
            follows=lambda: self.profiles.offset, warehouse=warehouse,
        )  # fmt: skip
        self.loader = Loader(
            log,
            warehouse,
            retention=settings.log_retention_hours * 3600,
            holds=lambda: min(self.profiles.offset, self.audiences.offset, self.forwarders.holds()),
            also=self._copy_identities,
            loaded=loaded,
        )
        self._copied: tuple[int, int] = (0, -1)  # (links version here, erasures elsewhere)
        self._links_changes = 0
        self._links_checked = 0.0
        report = reporter(debugger.delivery)
        self.forwarders: Forwarders | ForwarderProcess
        if forwarders_in == "thread":
            self.forwarders = Forwarders(log, destinations, report, busy=inflight.busy,
                                         retention=timedelta(days=settings.trace_retention_days))  # fmt: skip
        elif forwarders_in == "process":
            self.forwarders = ForwarderProcess(
                settings, destinations, report, log.last_offset, inflight
            )
        else:
            raise BadRequest(
                f"setting forwarders: must be process or thread (got {forwarders_in!r})",
                field="forwarders",
            )

    def catch_up(self) -> int:
        """Load and apply what the Log holds beyond the cursors (events acknowledged just
        before a crash); the number of events loaded."""
        recovered = self.loader.catch_up()
        self.profiles.catch_up()
        self.audiences.catch_up()
        return recovered

    def start(self) -> None:
        if isinstance(self.forwarders, Forwarders):
            self.forwarders.sync()
        self.log.subscribe(self.loader.notify)
        self.loader.start()
        self.profiles.start()
        self.audiences.start()
        self.forwarders.start()

    def stop(self) -> None:
        """Stop each with its work done: cursors saved, every acknowledged event applied."""
        self.forwarders.stop()  # each forwarder's cursor saved; undelivered events stay in the Log
        self.loader.stop()  # load all of it into the warehouse
        self.profiles.stop()  # and apply all of it to profiles
        self.audiences.stop()  # and to audiences, after the profiles they read

    def _copy_identities(self) -> None:
        """On the loader thread: give the Warehouse the profiles' links when they changed —
        here (the consumer linked ids) or in another process (an API node erased a user)."""
        now = time.monotonic()
        if now - self._links_checked >= LINKS_CHECK_SECONDS:
            self._links_checked = now
            self._links_changes = self.profiles.store.links_changes()
        version = self.profiles.identities_version
        if (version, self._links_changes) != self._copied:
            # The erasures this copy includes, read before the links: an erasure here bumps
            # both counters, and must not make a second copy when the stored one is next read
            self._links_changes = self.profiles.store.links_changes()
            self.warehouse.replace_identities(self.profiles.store.all_identities())
            self._copied = (version, self._links_changes)

    def identities_copied(self, version: int) -> bool:
        """The Warehouse has the links of this version of the profiles' (or later ones)."""
        return self._copied[0] >= version
