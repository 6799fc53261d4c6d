"""One running Roost: the settings, the stores and the pipeline, opened and closed together."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from roost.config import Settings
from roost.keyring import Keyring
from roost.pipeline import pipeline
from roost.pipeline.budget import Usage
from roost.pipeline.geo import Geo
from roost.pipeline.visitor import Visitor
from roost.storage.backends import open_store
from roost.storage.metadata import Metadata

log = logging.getLogger("roost")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = Metadata(settings.resolved_metadata_url())
        self.store: Any = open_store(settings)
        self.keys = Keyring(self.metadata, settings.key_cache_seconds)
        self.dedup = pipeline.dedup_index(settings)
        since = utcnow() - timedelta(days=settings.dedup_window_days)
        loaded = self.dedup.load(self.store.recent_message_ids(since))
        self.usage = Usage(self._usage_since, utcnow)
        self.geo = Geo(settings.geoip_db or None)
        self.pipeline = pipeline.build(
            settings,
            usage=self.usage,
            dedup=self.dedup,
            visitor=Visitor(self.metadata.salt_for),
            geo=self.geo,
        )
        self.ready = True
        log.info("store opened", extra={"dedup_ids": loaded, "last_offset": self.store.last_offset()})

    def _usage_since(self, workspace_id: int, since: datetime) -> int:
        return int(self.store.count_since(self.metadata.projects_of(workspace_id), since))

    async def close(self) -> None:
        self.ready = False
        await self.store.close()
        self.geo.close()
        self.metadata.close()
        log.info("store closed", extra={"last_offset": self.store.last_offset()})
