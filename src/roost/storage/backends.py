"""Backends picked by the scheme of a URL, from one table (uvicorn's HTTP_PROTOCOLS).

Each entry names a function `(url, settings) -> backend`; the SQLite and DuckDB URLs carry a
file path (`sqlite:///relative` or `sqlite:////absolute`), the cluster ones their servers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from roost.config import Settings
from roost.errors import BadRequest
from roost.storage.log import Log, LogReader
from roost.storage.warehouse import Warehouse

if TYPE_CHECKING:  # each backend in the tables must satisfy its protocol
    from roost.storage.log.jetstream import NatsLog, NatsLogReader
    from roost.storage.log.sqlite import SQLiteLog, SQLiteLogReader
    from roost.storage.warehouse.duckdb import DuckDBWarehouse

    _log: Log = SQLiteLog("")
    _log_reader: LogReader = SQLiteLogReader("")
    _nats_log: Log = NatsLog("")
    _nats_reader: LogReader = NatsLogReader("")
    _warehouse: Warehouse = DuckDBWarehouse("")

LOGS = {
    "sqlite": "roost.storage.log.sqlite:open_log",
    "nats": "roost.storage.log.jetstream:open_log",
}
LOG_READERS = {  # the Log from a process that does not write it
    "sqlite": "roost.storage.log.sqlite:open_reader",
    "nats": "roost.storage.log.jetstream:open_reader",
}
WAREHOUSES = {
    "duckdb": "roost.storage.warehouse.duckdb:open_warehouse",
    "clickhouse": "roost.storage.warehouse.clickhouse:open_warehouse",
}


def _pick(table: dict[str, str], url: str, setting: str) -> Any:
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in table:
        known = ", ".join(table)
        raise BadRequest(f"{setting}: unknown backend {scheme!r} (known: {known})", field=setting)
    module_name, _, attr = table[scheme].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def open_log(settings: Settings) -> Log:
    """The Log named by `log_url`."""
    url = settings.resolved_log_url()
    log: Log = _pick(LOGS, url, "log_url")(url, settings)
    return log


def open_log_reader(settings: Settings) -> LogReader:
    """The Log of `log_url`, for reading from another process than the writer's."""
    url = settings.resolved_log_url()
    reader: LogReader = _pick(LOG_READERS, url, "log_url")(url, settings)
    return reader


def open_warehouse(settings: Settings) -> Warehouse:
    """The Warehouse named by `warehouse_url`."""
    url = settings.resolved_warehouse_url()
    warehouse: Warehouse = _pick(WAREHOUSES, url, "warehouse_url")(url, settings)
    return warehouse


SHARED_LOGS = ("nats",)  # the backends several processes (and machines) can share
SHARED_WAREHOUSES = ("clickhouse",)


def shared_log(settings: Settings) -> bool:
    """Whether the Log is one other processes (and machines) append to and follow."""
    return settings.resolved_log_url().partition("://")[0] in SHARED_LOGS


def require_cluster(settings: Settings, why: str) -> None:
    """Refuse to split ingest from the consumers on backends only one process can open."""
    for setting, url, shared in (
        ("log_url", settings.resolved_log_url(), SHARED_LOGS),
        ("warehouse_url", settings.resolved_warehouse_url(), SHARED_WAREHOUSES),
    ):
        scheme = url.partition("://")[0]
        if scheme not in shared:
            wanted = " or ".join(f"{s}://" for s in shared)
            raise BadRequest(
                f"{setting}: {why} needs a backend other processes can share ({wanted}), "
                f"not {scheme}://",
                field=setting,
            )
