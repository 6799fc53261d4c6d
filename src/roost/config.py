"""Settings, read once at start-up: defaults, then `roost.toml`, then `ROOST_*`, then CLI flags.

Every setting is declared once below with its default and a one-line help; the README's
configuration reference lists them all (tests/test_docs.py checks it).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from roost.errors import BadRequest


def _setting(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Settings:
    data: str = _setting("./data", "Data directory: metadata database, event store, server state.")
    host: str = _setting("127.0.0.1", "Address `roost serve` listens on.")
    port: int = _setting(8000, "Port `roost serve` listens on.")
    log_url: str = _setting(
        "",
        "Where events are made durable; empty means `sqlite:///<data>/log.sqlite`; "
        "or a JetStream stream: `nats://host:4222[,host:4222…][?stream=ROOST&replicas=3]`.",
    )
    warehouse_url: str = _setting(
        "",
        "Where events are queried; empty means `duckdb:///<data>/events.duckdb`; "
        "or ClickHouse over HTTP: `clickhouse://[user:password@]host:8123/database`.",
    )
    metadata_url: str = _setting(
        "",
        "SQLAlchemy URL of the metadata store; empty means `sqlite:///<data>/metadata.sqlite`; "
        "or PostgreSQL: `postgresql+psycopg://user@host/db`.",
    )
    max_request_bytes: int = _setting(
        524288, "Largest request body accepted, before and after gzip (413 above it)."
    )
    max_batch_bytes: int = _setting(
        4194304,
        "Largest body of a batch on /v1/batch, /v1/import, /v1/b and PostHog's /batch/, before "
        "and after gzip (RudderStack's libraries size batches in characters, or up to 4 MB).",
    )
    max_event_bytes: int = _setting(32768, "Largest single event accepted (413 or per-event).")
    max_header_bytes: int = _setting(
        65536,
        "Largest request line and headers accepted (431 above it, and the connection closed).",
    )
    header_timeout_seconds: float = _setting(
        10.0, "Time a request's line and headers may take to arrive (408, closed, after it)."
    )
    body_timeout_seconds: float = _setting(
        30.0, "Time a request's body may take to arrive once its headers have (408 after it)."
    )
    keep_alive_seconds: float = _setting(5.0, "How long an idle kept-alive connection stays open.")
    max_connections_per_client: int = _setting(
        256,
        "Connections one client address may hold open at once (more: 429, closed); not "
        "applied with trust_forwarded_for (every client is then the proxy).",
    )
    max_connections: int = _setting(
        8192, "Connections and requests in flight in all; more are answered 503 at once."
    )
    max_clock_skew_days: float = _setting(
        365.0,
        "Largest clock correction a Segment `sentAt` may make; a larger one is ignored and "
        "noted in the event's `context.roost.clock`.",
    )
    dedup_window_days: float = _setting(
        7.0, "How long a messageId is remembered per project for deduplication."
    )
    dedup_max_ids: int = _setting(
        2_000_000,
        "Most messageIds the dedup index holds in memory (~125 bytes each); past it the oldest "
        "are forgotten before `dedup_window_days` (metric `roost_dedup_remembered_seconds`, and "
        "a warning in the log).",
    )
    geoip_db: str = _setting("", "Path of a MaxMind-format .mmdb country database; empty: none.")
    trust_forwarded_for: bool = _setting(
        False,
        "Take the client IP from X-Forwarded-For, its first address (only behind a proxy you "
        "run); off, the header is ignored, from any peer.",
    )
    key_cache_seconds: float = _setting(
        1.0, "How long a key lookup is cached; a revoked key is refused after at most this."
    )
    site_rate: float = _setting(
        10.0,
        "Events per second each client address may send to the key-less tracker endpoints "
        "(Plausible's /api/event, Umami's /api/send).",
    )
    site_burst: float = _setting(
        50.0, "Events a client address may send at once to the key-less tracker endpoints."
    )
    drift_max_event_names: int = _setting(
        1000,
        "Distinct event names a project may have before each new one is answered with a "
        "high_cardinality warning (an id in an event name).",
    )
    drift_max_properties: int = _setting(
        200,
        "Distinct properties an event may have before each new one is answered with a "
        "high_cardinality warning (a time in a property name).",
    )
    drift_max_values: int = _setting(
        10000,
        "Distinct values (estimated, per process) a string property of an event may take before "
        "it is answered with a high_cardinality warning, once.",
    )
    trace_retention_days: float = _setting(
        7.0,
        "How long each batch a destination delivered is remembered, so an event's trace can say "
        "when it arrived there (older ones are traced as delivered, without the time).",
    )
    commit_max_events: int = _setting(
        20000, "Most events the Log commits as one group (one row, one fsync)."
    )
    ingest_processes: int = _setting(
        1,
        "Processes that accept connections and read ingest requests (the server is one; "
        "the others hand it their events over a Unix socket): more use more cores for HTTP "
        "and parsing. Each applies max_connections and max_connections_per_client itself.",
    )
    ingest_hold_behind: int = _setting(
        20000,
        "Acknowledged events not yet queryable past which new ingest requests wait for the "
        "Warehouse (the embedded default: queries stay about a second behind under any "
        "load); 0: never wait.",
    )
    log_retention_hours: float = _setting(
        168.0, "How long the Log keeps events the Warehouse has already loaded."
    )
    disk_reserve_mb: int = _setting(
        100,
        "Free space the embedded stores leave on their disk: under it ingest answers 503 "
        "(the Warehouse may still catch up into the last three quarters of it); 0: none.",
    )
    checkpoint_wal_mb: int = _setting(
        64,
        "DuckDB WAL size that triggers a checkpoint (in a thread of its own, beside the loads): "
        "larger ones cost less per event, and take longer to replay after a crash.",
    )
    consumers: str = _setting(
        "here",
        "Where the Log's consumers (loader, profiles, forwarders) run: here (in `roost serve`) "
        "or workers (`roost worker` processes; a cluster, on nats:// and clickhouse://).",
    )
    forwarders: str = _setting(
        "process",
        "Where destinations' forwarders run: process (their own, at a lower CPU priority, so "
        "ingest keeps the CPU under load) or thread (in the server's process).",
    )
    forwarders_nice: int = _setting(
        10, "How much lower the forwarders' process runs than the server (a nice increment)."
    )
    forwarders_yield_at: int = _setting(
        32,
        "Ingest requests in flight at which each forwarder sends at most two batches a "
        "second, so ingest comes first; 0: never.",
    )
    sql_timeout_seconds: float = _setting(10.0, "Time limit of one query on the SQL endpoint.")
    sql_max_rows: int = _setting(10000, "Row limit of one query on the SQL endpoint.")
    sql_max_bytes: int = _setting(
        4 << 20,
        "Size limit of one answer on the SQL endpoint (the rows as Arrow holds them, about "
        "their JSON size); past it the answer is cut and says `truncated`.",
    )
    query_concurrency: int = _setting(
        4, "Queries (SQL endpoint, reports) run at once, on threads of their own; more wait."
    )
    sql_concurrency_per_project: int = _setting(
        1,
        "SQL endpoint queries one project runs at once; more wait their turn (up to "
        "sql_timeout_seconds, then 429), so one tenant cannot take every query thread.",
    )
    report_concurrency_per_project: int = _setting(
        3,
        "Reports (Stats API, dashboard) one project computes at once; more wait their turn "
        "(up to three times sql_timeout_seconds, a dashboard page's many reports included, "
        "then 429).",
    )
    query_nice: int = _setting(
        10, "Niceness of the query threads: a heavy query yields the CPU to ingest (0: none)."
    )
    query_threads: int = _setting(
        0,
        "Cores one query of the embedded DuckDB may use (0: every core); the threads beyond "
        "the query's own run at the lowest priority (nice 19, with query_nice above 0), on "
        "cores nothing else wants.",
    )
    query_memory_mb: int = _setting(
        2048,
        "Memory a query may use: ClickHouse's max_memory_usage per query; the embedded "
        "DuckDB's memory_limit (its loads included).",
    )
    default_plan: str = _setting(
        "enterprise", "Plan of the workspace `roost serve` creates on an empty data dir."
    )
    rate_limit_url: str = _setting(
        "",
        "Where the keys' rate limit buckets live; empty: in each node's memory; a SQLAlchemy "
        "URL (the metadata's PostgreSQL, say): shared, so all ingest nodes together admit a "
        "key's rate.",
    )
    enterprise_rate: float = _setting(
        0.0, "Events per second per key on the enterprise plan; 0 means unlimited."
    )
    enterprise_burst: float = _setting(0.0, "Burst per key on the enterprise plan (with a rate).")
    enterprise_hourly: float = _setting(
        0.0, "Events per hour per key on the enterprise plan; 0 means unlimited."
    )
    cookie_secure: str = _setting(
        "auto",
        "Mark the dashboard's cookies Secure: auto (when the request came over HTTPS, as seen "
        "directly or through X-Forwarded-Proto from a local proxy, or any with trust_forwarded_for), "
        "always, or never.",
    )
    session_days: float = _setting(14.0, "How long a dashboard login lasts.")
    metrics_listen: str = _setting(
        "127.0.0.1:9464",
        "Where `roost serve` serves Prometheus metrics (`/metrics`), apart from the API: "
        "host:port, loopback by default; empty: not at all.",
    )
    metrics_token: str = _setting(
        "",
        "With a token, `/metrics` on the main port too, to `Authorization: Bearer <token>`; "
        "empty: not there (its labels name every project).",
    )
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")
    log_format: str = _setting("json", "Log format: json (one object per line) or text.")

    @property
    def data_dir(self) -> Path:
        return Path(self.data)

    def resolved_log_url(self) -> str:
        return self.log_url or f"sqlite:///{(self.data_dir / 'log.sqlite').resolve()}"

    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{(self.data_dir / 'events.duckdb').resolve()}"

    def resolved_metadata_url(self) -> str:
        return self.metadata_url or f"sqlite:///{(self.data_dir / 'metadata.sqlite').resolve()}"


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
CHOICES = {
    "log_level": ("debug", "info", "warning", "error"),
    "log_format": ("json", "text"),
    "cookie_secure": ("auto", "always", "never"),
    "consumers": ("here", "workers"),
    "forwarders": ("process", "thread"),
    "default_plan": ("free", "pro", "enterprise"),
}
NOT_SETTINGS = ("projects",)  # roost.toml's other tables: the projects' pipelines


def _coerce(name: str, value: Any) -> Any:
    kind: type = type(FIELDS[name].default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        text = str(value).strip()
        try:
            if kind is bool:
                if text.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                    raise ValueError(text)
                value = text.lower() in ("1", "true", "yes", "on")
            else:
                value = kind(text)
        except ValueError:
            raise BadRequest(f"setting {name}: expected {kind.__name__}, got {text!r}") from None
    if name in CHOICES and value not in CHOICES[name]:
        raise BadRequest(
            f"setting {name}: must be one of {', '.join(CHOICES[name])} (got {value!r})"
        )
    return value


def config_file(data: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The roost.toml in use: $ROOST_CONFIG (which must exist), else the data dir's, else
    the working dir's."""
    env = os.environ if environ is None else environ
    given = env.get("ROOST_CONFIG")
    if given:
        if not Path(given).is_file():
            raise BadRequest(f"ROOST_CONFIG: there is no file at {given}")
        return Path(given)
    candidates = [Path(data) / "roost.toml", Path("roost.toml")]
    return next((path for path in candidates if path.is_file()), None)


def _read_toml(path: Path) -> dict[str, Any]:
    """The settings table of a roost.toml; an error names the file, the line and the key."""
    text = path.read_text(errors="replace")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(f"{path}: not valid TOML: {exc}") from None
    settings = table.get("roost", table)
    if not isinstance(settings, dict):
        raise BadRequest(f"{path}: [roost] must be a table of settings")
    for key in settings:
        if key not in FIELDS and key not in NOT_SETTINGS and key != "roost":
            found = re.search(rf"^\s*{re.escape(key)}\s*=", text, re.M)
            line = f", line {text[: found.start()].count(chr(10)) + 1}" if found else ""
            raise BadRequest(f"{path}{line}: {key!r} is not a setting (see the README)")
    return {k: v for k, v in settings.items() if k in FIELDS}


def load(
    overrides: dict[str, Any] | None = None, *, environ: dict[str, str] | None = None
) -> Settings:
    """Build the settings from `roost.toml` (in the data dir or the working dir), env, flags."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = str(flags.get("data") or env.get("ROOST_DATA") or Settings.data)
    path = config_file(data, env)
    if path is not None:
        for key, value in _read_toml(path).items():
            try:
                values[key] = _coerce(key, value)
            except BadRequest as exc:
                raise BadRequest(f"{path}: {exc.message}") from None
    for name in FIELDS:
        env_value = env.get(f"ROOST_{name.upper()}")
        if env_value is not None:
            values[name] = _coerce(name, env_value)
    for name, value in flags.items():
        if name in FIELDS:
            values[name] = _coerce(name, value)
    return Settings(**values)
