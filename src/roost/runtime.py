"""One running Roost: the settings, the stores and the pipeline, opened and closed together."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import maxminddb

from roost import metrics
from roost.config import Settings
from roost.consumers import audience_events, drift_digest
from roost.consumers.backlog import Backlog
from roost.consumers.debugger import Debugger
from roost.consumers.erasure import Scrubber
from roost.consumers.forwarder import Forwarders, backlog, begins_at, status
from roost.consumers.forwarder_process import ForwarderProcess
from roost.consumers.group import Consumers
from roost.consumers.inflight import Inflight
from roost.consumers.notices import Notifier
from roost.consumers.profiles import NAME as PROFILES
from roost.consumers.profiles import ProfilesConsumer
from roost.consumers.refusals import Refusals
from roost.errors import BadRequest
from roost.niceness import lower_priority
from roost.pipeline import pipeline
from roost.pipeline.budget import Usage
from roost.pipeline.consent import Consent
from roost.pipeline.contract import Contracts
from roost.pipeline.dedup import DedupIndex
from roost.pipeline.drift import Drift
from roost.pipeline.geo import Geo
from roost.pipeline.pipeline import Pipeline
from roost.pipeline.transform import Transform
from roost.pipeline.visitor import Visitor
from roost.query.cache import ResultCache
from roost.query.turns import Turns
from roost.storage.backends import open_log, open_warehouse, require_cluster, shared_log
from roost.storage.log import Log
from roost.storage.metadata import Metadata, project_config
from roost.storage.metadata.accounts import Accounts
from roost.storage.metadata.audiences import AudienceStore
from roost.storage.metadata.buckets import buckets_for
from roost.storage.metadata.contracts import ContractStore
from roost.storage.metadata.destinations import Destination, DestinationStore
from roost.storage.metadata.erasures import ErasureStore
from roost.storage.metadata.keyring import Keyring
from roost.storage.metadata.notices import NoticeStore
from roost.storage.metadata.profiles import ProfileStore
from roost.storage.metadata.quarantine import QuarantineStore
from roost.storage.metadata.schema_seen import SeenStore
from roost.storage.metadata.settings import AudienceDefinitions, ProjectSettings
from roost.storage.metadata.shares import Shares
from roost.storage.metadata.sites import Sites
from roost.storage.warehouse import Warehouse

log = logging.getLogger("roost")
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


ALERT_EVERY_SECONDS = 30.0  # how often destinations' backlogs are checked for alerts


class Runtime:
    """Everything one running Roost holds. Made cheaply; `open()` opens the stores, catches
    the consumers up and starts their threads; `close()` stops and closes all of it. Also an
    async context: `async with Runtime(settings) as runtime: ...`."""

    metadata: Metadata
    log: Log
    warehouse: Warehouse
    debugger: Debugger
    destinations: DestinationStore
    erasures: ErasureStore
    accounts: Accounts
    results: ResultCache
    query_pool: ThreadPoolExecutor
    sql_turns: Turns
    report_turns: Turns
    inflight: Inflight
    backlog: Backlog
    consumers: Consumers | None
    profiles: ProfilesConsumer
    forwarders: Forwarders | ForwarderProcess
    keys: Keyring
    dedup: DedupIndex
    notices: NoticeStore
    notifier: Notifier
    usage: Usage
    geo: Geo
    contract_store: ContractStore
    contracts: Contracts
    project_settings: ProjectSettings
    audience_store: AudienceStore
    quarantine: QuarantineStore
    refusals: Refusals
    seen: SeenStore
    sites: Sites
    shares: Shares
    consent: Consent
    transform: Transform
    pipeline: Pipeline
    scrubber: Scrubber

    def __init__(self, settings: Settings) -> None:
        if settings.consumers not in ("here", "workers"):
            raise BadRequest(
                f"setting consumers: must be here or workers (got {settings.consumers!r})",
                field="consumers",
            )
        if settings.consumers == "workers":
            require_cluster(settings, "consumers = workers")
        self.settings = settings
        self.ready = False
        self._opened = False
        self._closed = False

    async def __aenter__(self) -> Runtime:
        return self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def open(self) -> Runtime:
        """Open the stores, replay what the consumers have not seen, start their threads."""
        assert not self._opened, "a Runtime opens once"
        self._opened = True
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = Metadata(settings.resolved_metadata_url())
        self.log = open_log(settings)
        self.warehouse = open_warehouse(settings)
        self.debugger = Debugger()
        self.destinations = DestinationStore(self.metadata.engine)
        self.erasures = ErasureStore(self.metadata.engine)
        self.accounts = Accounts(self.metadata.engine, settings.session_days)
        self.results = ResultCache()
        # queries on threads of their own, a bounded number at once: they never hold the
        # shared pool that ingest and the dashboard use, and what waits is bounded too
        self.query_pool = ThreadPoolExecutor(
            max(1, settings.query_concurrency),
            thread_name_prefix="roost-query",
            initializer=lower_priority,
            initargs=(settings.query_nice,),
        )
        self.sql_turns = Turns(settings.sql_concurrency_per_project, "SQL queries")
        self.report_turns = Turns(settings.report_concurrency_per_project, "reports")
        self.inflight = Inflight(settings.forwarders_yield_at)
        self.backlog = Backlog(
            self._loaded_behind
            if settings.consumers == "here" and not shared_log(settings)
            else None,
            # never under what the Loader waits to gather for one load (ClickHouse: 50,000)
            settings.ingest_hold_behind
            and max(settings.ingest_hold_behind, 2 * self.warehouse.load_shape.events),
        )
        profile_store = ProfileStore(self.metadata.engine)
        self.audience_store = AudienceStore(self.metadata.engine)
        self.quarantine = QuarantineStore(self.metadata.engine)
        self.refusals = Refusals()
        self.audience_definitions = AudienceDefinitions(
            ProjectSettings(self.metadata.engine), settings.key_cache_seconds
        )
        recovered = 0
        self.consumers = None
        if settings.consumers == "here":
            self.consumers = Consumers(
                settings, self.log, self.warehouse, profile_store, self.destinations,
                self.debugger, self.inflight, forwarders_in=settings.forwarders,
                loaded=self.backlog.loaded, audiences=self.audience_definitions,
            )  # fmt: skip
            recovered = self.consumers.catch_up()
            self.profiles = self.consumers.profiles
            self.forwarders = self.consumers.forwarders
        else:  # run by `roost worker`: here only their stores, read (profiles, delivery state)
            self.profiles = ProfilesConsumer(self.log, profile_store)
            self.forwarders = Forwarders(self.log, self.destinations)
        self.keys = Keyring(self.metadata, settings.key_cache_seconds)
        self.dedup = pipeline.dedup_index(settings, _dedup_forgetting)
        since = utcnow() - timedelta(days=settings.dedup_window_days)
        remembered = self.dedup.load(self.warehouse.recent_message_ids(since))
        self.notices = NoticeStore(self.metadata.engine)
        self.notifier = Notifier(self.notices, self._owners, self._workspace_name)
        self.usage = Usage(self._usage_since, utcnow, self.notifier.notify)
        self.geo = Geo(maxminddb.open_database(settings.geoip_db) if settings.geoip_db else None)
        self.contract_store = ContractStore(self.metadata.engine)
        self.contracts = Contracts(self.contract_store.plan, ttl=settings.key_cache_seconds)
        self.project_settings = ProjectSettings(self.metadata.engine)
        self.shares = Shares(self.metadata.engine)
        ttl = settings.key_cache_seconds
        self.sites = Sites(self.metadata, self.project_settings, ttl, settings.site_rate,
                           settings.site_burst)  # fmt: skip
        self.consent = Consent(self.project_settings.storage_consent, ttl=ttl)
        self.transform = Transform(self.project_settings.steps, ttl=ttl,
                                   errors_for=self.project_settings.transformation_errors,
                                   room_for=self.quarantine.room)  # fmt: skip
        self.seen = SeenStore(self.metadata.engine)
        self.drift = drift = Drift(settings.drift_max_event_names, settings.drift_max_properties,
                                   settings.drift_max_values)  # fmt: skip
        drift.load(self.seen.load(), self.seen.noticed())
        self.pipeline = pipeline.build(
            settings,
            usage=self.usage,
            dedup=self.dedup,
            visitor=Visitor(self.metadata.salt_for),
            geo=self.geo,
            contracts=self.contracts,
            consent=self.consent,
            transform=self.transform,
            buckets=buckets_for(settings.rate_limit_url),
            drift=drift,
        )
        metrics.LOG_LAST_OFFSET.set_function(self.log.last_offset)
        metrics.WAREHOUSE_BEHIND.set_function(self._behind_now)
        metrics.DEDUP_IDS.set_function(lambda: self.dedup.held)
        metrics.DESTINATIONS.source = self._destination_backlog
        metrics.DEDUP_REMEMBERED.set_function(
            lambda: (now := time.time()) - self.dedup.remembers_since(now)
        )
        self.scrubber = Scrubber(self.log, self.warehouse, self.metadata.engine, self.erasures)
        if self.consumers is not None:
            self.consumers.start()
        self.scrubber.start()
        self.notifier.start()
        self.ready = True
        room = getattr(self.log, "room", None)
        if room is not None and not room.enough():
            log.warning("%s: queries are answered, ingest answers 503 until there is room",
                        room.problem())  # fmt: skip
        log.info(
            "store opened",
            extra={
                "last_offset": self.log.last_offset(),
                "recovered": recovered,
                "dedup_ids": remembered,
            },
        )
        return self

    def config_stores(self) -> project_config.Stores:
        return project_config.Stores(self.contract_store, self.project_settings, self.destinations)

    def configured(self, project_id: int) -> None:
        """A project's pipeline configuration changed here: apply it now, not after the TTL."""
        self.contracts.plan.forget(project_id)
        self.consent.setting.forget(project_id)
        self.transform.steps.forget(project_id)
        self.forwarders.poke()

    def _owners(self, workspace_id: int) -> list[str]:
        return [u.email for u in self.accounts.list_users(workspace_id) if u.role == "owner"]

    def _workspace_name(self, workspace_id: int) -> str:
        found = [w.name for w in self.metadata.list_workspaces() if w.id == workspace_id]
        return found[0] if found else str(workspace_id)

    def _usage_since(self, workspace_id: int, since: datetime) -> int:
        return int(self.warehouse.count_since(self.metadata.projects_of(workspace_id), since))

    def destination_statuses(self, project_id: int) -> list[dict[str, Any]]:
        """Each of the project's destinations' delivery health (consumers/forwarder.status)."""
        last = self.log.last_offset()
        return [
            status(d, self.destinations, self.log, last, self.forwarders.get(d.id))
            for d in self.destinations.configured(project_id)
        ]

    def _waiting(self, d: Destination, last: int, now: datetime) -> tuple[int, float | None]:
        """A destination's backlog: the events after its cursor, and the first one's age."""
        state = self.destinations.state(d.id)
        return backlog(self.log, state.log_offset if state else begins_at(self.log, d), last, now)

    def _destination_backlog(self) -> list[tuple[str, str, int, float | None]]:
        """Each destination's backlog, for the metrics (read when Prometheus scrapes): its
        cursor and the Log only, not its dead letters."""
        last, now = self.log.last_offset(), datetime.now(UTC)
        return [
            (project.slug, d.name, *self._waiting(d, last, now))
            for project in self.metadata.list_projects()
            for d in self.destinations.configured(project.id)
        ]

    def destination_alerts(self) -> int:
        """Alert (once a day each, through the workspace's channels) for every destination
        whose backlog is past its `alert_backlog` or `alert_waiting_seconds`; how many went."""
        last, now = self.log.last_offset(), datetime.now(UTC)
        sent = 0
        for project in self.metadata.list_projects():
            for d in self.destinations.configured(project.id):
                if d.alert_backlog is None and d.alert_waiting_seconds is None:
                    continue
                lag, waited = self._waiting(d, last, now)
                over = (d.alert_backlog is not None and lag >= d.alert_backlog) or (
                    d.alert_waiting_seconds is not None and waited is not None
                    and waited >= d.alert_waiting_seconds
                )  # fmt: skip
                if not over:
                    continue
                age = f", the oldest waiting {waited:.0f} s" if waited is not None else ""
                text = (
                    f"destination {d.name} of project {project.slug}: {lag:,} events waiting{age}"
                )
                payload = {"type": "destination_backlog", "project": project.slug,
                           "destination": d.name, "backlog": lag,
                           "oldest_waiting_seconds": waited}  # fmt: skip
                sent += self.notifier.alert(project.workspace_id, d.id, f"{now:%Y-%m-%d}", text,
                                            payload)  # fmt: skip
        return sent

    def drift_digests(self, now: datetime | None = None) -> int:
        """Last week's schema drift digests not sent yet (consumers/drift_digest.py)."""
        return drift_digest.send(self.metadata, self.seen, self.notifier, now or datetime.now(UTC))

    async def _alerting(self) -> None:
        digested = 0.0
        while True:
            try:
                await asyncio.to_thread(self.destination_alerts)
            except Exception:
                log.exception("destination alerts failed; trying again")
            if time.monotonic() - digested >= drift_digest.CHECK_EVERY_SECONDS:
                digested = time.monotonic()
                try:
                    await asyncio.to_thread(self.drift_digests)
                except Exception:
                    log.exception("schema drift digests failed; trying again in an hour")
            await asyncio.sleep(ALERT_EVERY_SECONDS)

    async def background(self) -> None:
        """What runs on the server's event loop beside the requests, until cancelled: the
        audiences' entries and exits into the Log (consumers/audience_events.py), the
        destinations' backlog alerts and the weekly schema drift digests."""
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def announced() -> None:  # from the audiences consumer's thread
            loop.call_soon_threadsafe(wake.set)

        if self.consumers is not None:  # its entries and exits: drained as soon as written
            self.consumers.audiences.announced = announced
        wake.set()  # what an earlier run left in the outbox
        await asyncio.gather(audience_events.run(self, wake), self._alerting())

    async def caught_up(self, timeout: float = 1.0) -> bool:
        """Wait (at most `timeout`) until every acknowledged event is queryable, attributed."""
        deadline = time.monotonic() + timeout
        target = self.log.last_offset()
        if self.consumers is None:  # a worker elsewhere: watch the cursors it stores
            return await self._stored_up_to(target, deadline)
        await self.profiles.caught_up(target, timeout)
        await self.consumers.audiences.caught_up(target, max(0.0, deadline - time.monotonic()))
        version = self.profiles.identities_version
        if not await self.consumers.loader.caught_up(target, max(0.0, deadline - time.monotonic())):
            return False
        while not self.consumers.identities_copied(version):
            if time.monotonic() >= deadline:
                return False
            self.consumers.loader.poke()
            await asyncio.sleep(0.005)
        return True

    async def query(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a Warehouse query on the query threads."""
        call = functools.partial(work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.query_pool, call)

    def _loaded_behind(self) -> int:
        """Events the Loader here has yet to load (the Log's offsets are dense)."""
        return self.log.last_offset() - self.warehouse.loaded_offset()

    def _behind_now(self) -> int:
        loaded = (
            self.warehouse.loaded_offset()
            if self.consumers is not None
            else self.warehouse.stored_offset()
        )
        return self.log.count_between(loaded, self.log.last_offset())

    async def behind(self) -> int:
        """How many acknowledged events the Warehouse has not loaded yet (0: none)."""
        target = self.log.last_offset()
        if self.consumers is None:
            loaded = await asyncio.to_thread(self.warehouse.stored_offset)
        else:
            loaded = self.warehouse.loaded_offset()
        return await asyncio.to_thread(self.log.count_between, loaded, target)

    async def _stored_up_to(self, target: int, deadline: float) -> bool:
        delay = 0.005
        while True:
            profiles, loaded = await asyncio.to_thread(
                lambda: (self.profiles.store.cursor(PROFILES), self.warehouse.stored_offset())
            )
            if profiles >= target and loaded >= target:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def close(self) -> None:
        self.ready = False
        self.log.drain()  # on the loop: commits what was acknowledged, refuses the rest
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Close everything, each step whatever the others did (a full disk may fail a
        checkpoint; what was acknowledged is already durable in the Log)."""
        if self._closed or not self._opened:
            return
        self._closed = True
        self.ready = False
        try:
            self.log.drain()  # commit what was acknowledged, refuse the rest
        except Exception as exc:
            log.error("closing: the Log's last commit failed: %s", exc)
        last = self.log.last_offset()  # asked before the Log closes (NATS: its connection)
        for step in (
            self.scrubber.stop,
            self.notifier.stop,
            *([self.consumers.stop] if self.consumers is not None else []),
            self.log.close_sync,
            self.warehouse.close,
            lambda: self.query_pool.shutdown(wait=True, cancel_futures=True),
            self.geo.close,
            self.metadata.close,
        ):
            try:
                step()
            except Exception as exc:
                log.error("closing: %s failed: %s", getattr(step, "__qualname__", step), exc)
        log.info("store closed", extra={"last_offset": last})


def _dedup_forgetting(seconds: float) -> None:
    log.warning(
        "the dedup index is full (dedup_max_ids): messageIds are remembered for %.1f hours, "
        "not dedup_window_days; raise dedup_max_ids (~125 bytes an id) to keep them longer",
        seconds / 3600,
    )
