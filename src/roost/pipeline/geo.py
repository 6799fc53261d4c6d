"""IP → country, from a MaxMind-format `.mmdb` database when one is configured (opened by the
Runtime and handed in: a stage opens nothing itself)."""

from __future__ import annotations

from typing import Any, Protocol

from roost.pipeline.batch import Batch


class Database(Protocol):
    """What Geo needs of a maxminddb Reader."""

    def get(self, ip: str) -> Any: ...

    def close(self) -> None: ...


class Geo:
    def __init__(self, reader: Database | None) -> None:
        self.reader = reader

    def country(self, ip: str) -> str | None:
        if self.reader is None:
            return None
        try:
            record = self.reader.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        country = record.get("country") or record.get("registered_country") or {}
        code = country.get("iso_code") if isinstance(country, dict) else None
        return code if isinstance(code, str) else None

    def __call__(self, batch: Batch) -> None:
        if self.reader is None:
            return
        for event in batch.events:
            if event.ip:
                event.country = self.country(event.ip)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
