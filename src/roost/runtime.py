"""One running Roost: the settings, the stores and the pipeline, opened and closed together."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from roost import project_config
from roost.config import Settings
from roost.consumers.debugger import Debugger
from roost.consumers.forwarder import Forwarders, reporter
from roost.consumers.forwarder_process import ForwarderProcess
from roost.consumers.profiles import ProfilesConsumer
from roost.errors import BadRequest
from roost.inflight import Inflight
from roost.keyring import Keyring
from roost.pipeline import pipeline
from roost.pipeline.budget import Usage
from roost.pipeline.consent import Consent
from roost.pipeline.contract import Contracts
from roost.pipeline.geo import Geo
from roost.pipeline.transform import Transform
from roost.pipeline.visitor import Visitor
from roost.query.cache import ResultCache
from roost.storage.accounts import Accounts
from roost.storage.backends import open_log, open_warehouse
from roost.storage.contracts import ContractStore
from roost.storage.destinations import DestinationStore
from roost.storage.erasures import ErasureStore
from roost.storage.loader import Loader
from roost.storage.log import Log
from roost.storage.metadata import Metadata
from roost.storage.profiles import ProfileStore
from roost.storage.project_settings import ProjectSettings
from roost.storage.warehouse import Warehouse

log = logging.getLogger("roost")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = Metadata(settings.resolved_metadata_url())
        self.log: Log = open_log(settings)
        self.warehouse: Warehouse = open_warehouse(settings)
        self.profiles = ProfilesConsumer(self.log, ProfileStore(self.metadata.engine))
        self.loader = Loader(
            self.log,
            self.warehouse,
            retention=settings.log_retention_hours * 3600,
            holds=lambda: min(self.profiles.offset, self.forwarders.holds()),
            also=self._copy_identities,
        )
        self._identities_copied = 0
        recovered = self.loader.catch_up()  # events acknowledged just before a crash
        self.profiles.catch_up()
        self.debugger = Debugger()
        self.destinations = DestinationStore(self.metadata.engine)
        self.erasures = ErasureStore(self.metadata.engine)
        self.accounts = Accounts(self.metadata.engine, settings.session_days)
        self.results = ResultCache()
        self.inflight = Inflight(settings.forwarders_yield_at)
        self.forwarders = self._forwarders()
        self.log.subscribe(self.loader.notify)
        self.loader.start()
        self.profiles.start()
        self.forwarders.start()
        self.keys = Keyring(self.metadata, settings.key_cache_seconds)
        self.dedup = pipeline.dedup_index(settings)
        since = utcnow() - timedelta(days=settings.dedup_window_days)
        remembered = self.dedup.load(self.warehouse.recent_message_ids(since))
        self.usage = Usage(self._usage_since, utcnow)
        self.geo = Geo(settings.geoip_db or None)
        self.contract_store = ContractStore(self.metadata.engine)
        self.contracts = Contracts(self.contract_store.plan, ttl=settings.key_cache_seconds)
        self.project_settings = ProjectSettings(self.metadata.engine)
        ttl = settings.key_cache_seconds
        self.consent = Consent(self.project_settings.storage_consent, ttl=ttl)
        self.transform = Transform(self.project_settings.steps, ttl=ttl)
        self.pipeline = pipeline.build(
            settings,
            usage=self.usage,
            dedup=self.dedup,
            visitor=Visitor(self.metadata.salt_for),
            geo=self.geo,
            contracts=self.contracts,
            consent=self.consent,
            transform=self.transform,
        )
        self.ready = True
        self._closed = False
        log.info(
            "store opened",
            extra={
                "last_offset": self.log.last_offset(),
                "recovered": recovered,
                "dedup_ids": remembered,
            },
        )

    def _forwarders(self) -> Forwarders | ForwarderProcess:
        report = reporter(self.debugger.delivery)
        where = self.settings.forwarders
        if where == "thread":
            forwarders = Forwarders(self.log, self.destinations, report, busy=self.inflight.busy)
            forwarders.sync()
            return forwarders
        if where == "process":
            return ForwarderProcess(
                self.settings, self.destinations, report, self.log.last_offset, self.inflight
            )
        raise BadRequest(
            f"setting forwarders: must be process or thread (got {where!r})", field="forwarders"
        )

    def config_stores(self) -> project_config.Stores:
        return project_config.Stores(self.contract_store, self.project_settings, self.destinations)

    def configured(self, project_id: int) -> None:
        """A project's pipeline configuration changed here: apply it now, not after the TTL."""
        self.contracts.plan.forget(project_id)
        self.consent.setting.forget(project_id)
        self.transform.steps.forget(project_id)
        self.forwarders.poke()

    def _usage_since(self, workspace_id: int, since: datetime) -> int:
        return int(self.warehouse.count_since(self.metadata.projects_of(workspace_id), since))

    def _copy_identities(self) -> None:
        """On the loader thread: give the Warehouse the profiles' links when they changed."""
        version = self.profiles.identities_version
        if version != self._identities_copied:
            self.warehouse.replace_identities(self.profiles.store.all_identities())
            self._identities_copied = version

    async def caught_up(self, timeout: float = 1.0) -> bool:
        """Wait (at most `timeout`) until every acknowledged event is queryable, attributed."""
        deadline = time.monotonic() + timeout
        target = self.log.last_offset()
        await self.profiles.caught_up(target, timeout)
        version = self.profiles.identities_version
        if not await self.loader.caught_up(target, max(0.0, deadline - time.monotonic())):
            return False
        while self._identities_copied < version:
            if time.monotonic() >= deadline:
                return False
            self.loader.poke()
            await asyncio.sleep(0.005)
        return True

    async def close(self) -> None:
        self.ready = False
        self.log.drain()  # on the loop: commits what was acknowledged, refuses the rest
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.ready = False
        self.log.drain()  # commit what was acknowledged, refuse the rest
        self.forwarders.stop()  # each forwarder's cursor saved; undelivered events stay in the Log
        self.loader.stop()  # load all of it into the warehouse
        self.profiles.stop()  # and apply all of it to profiles
        self.log.close_sync()
        self.warehouse.close()
        self.geo.close()
        self.metadata.close()
        log.info("store closed", extra={"last_offset": self.log.last_offset()})
