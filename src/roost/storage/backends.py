"""Backends picked by the scheme of a URL, from one table (uvicorn's HTTP_PROTOCOLS)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from roost.config import Settings
from roost.errors import BadRequest
from roost.storage.log import Log, LogReader
from roost.storage.warehouse import Warehouse

if TYPE_CHECKING:  # each backend in the tables must satisfy its protocol
    from roost.storage.duckdb import DuckDBWarehouse
    from roost.storage.sqlite_log import SQLiteLog, SQLiteLogReader

    _log: Log = SQLiteLog("")
    _log_reader: LogReader = SQLiteLogReader("")
    _warehouse: Warehouse = DuckDBWarehouse("")

LOGS = {
    "sqlite": "roost.storage.sqlite_log:SQLiteLog",
}
LOG_READERS = {  # the Log from a process that does not write it
    "sqlite": "roost.storage.sqlite_log:SQLiteLogReader",
}
WAREHOUSES = {
    "duckdb": "roost.storage.duckdb:DuckDBWarehouse",
}


def _pick(table: dict[str, str], url: str, setting: str) -> tuple[Any, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in table:
        known = ", ".join(table)
        raise BadRequest(f"{setting}: unknown backend {scheme!r} (known: {known})", field=setting)
    module_name, _, attr = table[scheme].partition(":")
    return getattr(importlib.import_module(module_name), attr), rest.removeprefix("/")


def open_log(settings: Settings) -> Log:
    """The Log named by `log_url` (`sqlite:///relative` or `sqlite:////absolute` path)."""
    cls, path = _pick(LOGS, settings.resolved_log_url(), "log_url")
    log: Log = cls(path, commit_max_events=settings.commit_max_events)
    return log


def open_log_reader(settings: Settings) -> LogReader:
    """The Log of `log_url`, for reading from another process than the writer's."""
    cls, path = _pick(LOG_READERS, settings.resolved_log_url(), "log_url")
    reader: LogReader = cls(path)
    return reader


def open_warehouse(settings: Settings) -> Warehouse:
    """The Warehouse named by `warehouse_url`."""
    cls, path = _pick(WAREHOUSES, settings.resolved_warehouse_url(), "warehouse_url")
    warehouse: Warehouse = cls(path, checkpoint_wal_mb=settings.checkpoint_wal_mb)
    return warehouse
