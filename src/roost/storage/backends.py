"""Backends picked by the scheme of a URL, from one table (uvicorn's HTTP_PROTOCOLS)."""

from __future__ import annotations

import importlib
from typing import Any

from roost.config import Settings
from roost.errors import BadRequest

STORES = {
    "duckdb": "roost.storage.duckdb:DuckDBStore",
}


def open_store(settings: Settings) -> Any:
    """The Log and Warehouse named by `log_url` (one object may serve as both)."""
    url = settings.resolved_log_url()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in STORES:
        raise BadRequest(f"log_url: unknown backend {scheme!r} (known: {', '.join(STORES)})", field="log_url")
    module_name, _, attr = STORES[scheme].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if scheme == "duckdb":
        return cls(
            rest,
            commit_max_events=settings.commit_max_events,
            checkpoint_wal_mb=settings.checkpoint_wal_mb,
        )
    return cls(url)
