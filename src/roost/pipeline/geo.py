"""IP → country, from a MaxMind-format `.mmdb` file when one is configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import maxminddb

from roost.pipeline.batch import Batch


class Geo:
    def __init__(self, database: str | Path | None) -> None:
        self.reader: Any = maxminddb.open_database(str(database)) if database else None

    def country(self, ip: str) -> str | None:
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
