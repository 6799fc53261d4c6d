"""PostgreSQL warehouse: Segment's warehouse schema, kept up to date batch by batch.

Tables (in `schema`, default `roost`): `tracks`, `identifies`, `pages`, `screens`, `groups`,
`aliases`, `users` (one row per user, traits upserted) and one table per track event, named
after the event in snake_case, with its properties as columns. Nested objects are flattened
with `_` (`context.page.path` → `context_page_path`), arrays are stored as JSON text.

A table is created the first time it is needed and a new property adds a column. Numbers
are `numeric`, booleans `boolean`, strings `text`. A value whose type does not fit its
column (a string where numbers were) turns the column into `text`, so no data is lost, and
the conflict is recorded in `roost_type_conflicts`. Rows are keyed by messageId and inserted
with ON CONFLICT DO NOTHING, so a batch delivered twice (a retry, a replay) changes nothing.
Each batch is one transaction.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from roost.destinations.base import DeliveryError, no_other_options, option

TYPE_TABLES = {
    "track": "tracks",
    "identify": "identifies",
    "page": "pages",
    "screen": "screens",
    "group": "groups",
    "alias": "aliases",
}
RESERVED = {*TYPE_TABLES.values(), "users", "roost_type_conflicts"}
STANDARD = {
    "id": "text",
    "received_at": "timestamptz",
    "timestamp": "timestamptz",
    "uuid_ts": "timestamptz",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_PG_TYPES = {"text", "numeric", "boolean", "timestamptz"}


@functools.lru_cache(maxsize=65536)  # the same few names, event after event
def snake(name: str) -> str:
    """Segment's column and table names: `orderId` → `order_id`, `Order Completed` → `order_completed`."""
    out = _NOT_WORD.sub("_", _CAMEL.sub("_", name).lower()).strip("_")
    if not out or out[0].isdigit():
        out = f"_{out}"
    return out[:63]


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _column(prefix, key)
        if isinstance(item, dict):
            out.update(flatten(item, name))
        elif item is not None:
            out[name] = item
    return out


@functools.lru_cache(maxsize=65536)
def _column(prefix: str, key: Any) -> str:
    return snake(f"{prefix}_{key}" if prefix else str(key))


def pg_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "numeric"
    return "text"


def as_column(value: Any, column_type: str) -> Any:
    if column_type == "text":
        return value if isinstance(value, str) else msgspec.json.encode(value).decode()
    if column_type == "timestamptz" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def rows_of(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (table, row) pairs one event makes."""
    common: dict[str, Any] = {
        "id": event["messageId"],
        "received_at": event.get("receivedAt"),
        "timestamp": event.get("timestamp"),
        "user_id": event.get("userId"),
        "anonymous_id": event.get("anonymousId"),
        **flatten(event.get("context") or {}, "context"),
    }
    kind = event["type"]
    rows: list[tuple[str, dict[str, Any]]] = []
    if kind == "track":
        name = event.get("event") or ""
        table = snake(name)
        if table in RESERVED:
            table = f"_{table}"[:63]
        props = flatten(event.get("properties") or {})
        rows.append((TYPE_TABLES[kind], {**common, "event": table, "event_text": name}))
        rows.append((table, {**props, **common, "event": table, "event_text": name}))
    elif kind in ("page", "screen"):
        props = flatten(event.get("properties") or {})
        rows.append((TYPE_TABLES[kind], {**props, **common, "name": event.get("name")}))
    elif kind == "identify":
        traits = flatten(event.get("traits") or {})
        rows.append((TYPE_TABLES[kind], {**traits, **common}))
        if event.get("userId"):
            rows.append(
                ("users", {**traits, "id": event["userId"], "received_at": event.get("receivedAt")})
            )
    elif kind == "group":
        traits = flatten(event.get("traits") or {})
        rows.append((TYPE_TABLES[kind], {**traits, **common, "group_id": event.get("groupId")}))
    elif kind == "alias":
        rows.append((TYPE_TABLES[kind], {**common, "previous_id": event.get("previousId")}))
    return [(table, {k: v for k, v in row.items() if v is not None}) for table, row in rows]


class PostgresWarehouse:
    def __init__(self, options: dict[str, Any]) -> None:
        no_other_options(options, {"dsn", "schema", "timeout"})
        self.dsn: str = option(options, "dsn", str)
        self.schema: str = option(options, "schema", str, "roost")
        if snake(self.schema) != self.schema:
            option({"schema": None}, "schema", str)  # refused, naming the option
        self.timeout = float(option(options, "timeout", (int, float), 10.0))
        self.conn: psycopg.Connection[Any] | None = None
        self.columns: dict[str, dict[str, str]] = {}  # table → column → type, as created

    def _connect(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.dsn, connect_timeout=max(1, int(self.timeout)))
            self.columns.clear()
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                self.conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.roost_type_conflicts (table_name text, "
                        "column_name text, column_type text, value_type text, "
                        "first_seen timestamptz NOT NULL DEFAULT now(), "
                        "PRIMARY KEY (table_name, column_name, value_type))"
                    ).format(sql.Identifier(self.schema))
                )
        return self.conn

    def _table(self, conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
        if table not in self.columns:
            name = sql.Identifier(self.schema, table)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, received_at timestamptz, "
                    '"timestamp" timestamptz, uuid_ts timestamptz NOT NULL DEFAULT now())'
                ).format(name)
            )
            found = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (self.schema, table),
            ).fetchall()
            types = {"timestamp with time zone": "timestamptz"}
            self.columns[table] = {c: types.get(t, t) for c, t in found}
        return self.columns[table]

    def _fit(self, conn: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
        """Add the columns the row brings; turn a column it conflicts with into text."""
        columns = self._table(conn, table)
        name = sql.Identifier(self.schema, table)
        for column, value in row.items():
            wanted = STANDARD.get(column) or pg_type(value)
            have = columns.get(column)
            if have is None:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        name, sql.Identifier(column), sql.SQL(wanted)
                    )
                )
                columns[column] = wanted
            elif have != wanted and have != "text" and have in _PG_TYPES:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text USING {}::text").format(
                        name, sql.Identifier(column), sql.Identifier(column)
                    )
                )
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.roost_type_conflicts "
                        "(table_name, column_name, column_type, value_type) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING"
                    ).format(sql.Identifier(self.schema)),
                    (table, column, have, wanted),
                )
                columns[column] = "text"

    def _insert(
        self, conn: psycopg.Connection[Any], table: str, rows: list[dict[str, Any]]
    ) -> None:
        """One statement per table: the rows go as one JSON parameter that PostgreSQL itself
        turns into records of the table's type (no per-row work in Python or the driver)."""
        target = sql.Identifier(self.schema, table)
        names = list(dict.fromkeys(name for row in rows for name in row))
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in names)
        query = sql.SQL(
            "INSERT INTO {0} ({1}) SELECT {1} FROM json_populate_recordset(NULL::{0}, %s) "
            "ON CONFLICT (id) DO NOTHING"
        ).format(target, cols)
        conn.execute(query, (msgspec.json.encode(rows).decode(),))

    def _upsert_user(self, conn: psycopg.Connection[Any], row: dict[str, Any]) -> None:
        """In order, one by one: the last identify's traits win."""
        target = sql.Identifier(self.schema, "users")
        names = list(row)
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
            target,
            sql.SQL(", ").join(sql.Identifier(c) for c in names),
            sql.SQL(", ").join(sql.Placeholder() for _ in names),
            sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in names if c != "id"
            ),
        )
        conn.execute(query, list(row.values()))

    def deliver(self, events: list[dict[str, Any]]) -> None:
        try:
            conn = self._connect()
            with conn.transaction():
                tables: dict[str, list[dict[str, Any]]] = {}
                users: list[dict[str, Any]] = []
                found = [pair for event in events for pair in rows_of(event)]
                for table, row in found:
                    self._fit(conn, table, row)
                for table, row in found:  # after every fit: a later row may have widened a column
                    types = self.columns[table]
                    values = {c: as_column(v, types[c]) for c, v in row.items()}
                    if table == "users":
                        users.append(values)
                    else:
                        tables.setdefault(table, []).append(values)
                for table, rows in tables.items():
                    self._insert(conn, table, rows)
                for values in users:
                    self._upsert_user(conn, values)
        except psycopg.OperationalError as exc:
            self._drop()
            raise DeliveryError(f"PostgreSQL: {exc}".strip()) from None
        except psycopg.Error as exc:
            self.columns.clear()  # the transaction's DDL was rolled back
            raise DeliveryError(f"PostgreSQL: {type(exc).__name__}: {exc}".strip()) from None

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.columns.clear()

    def close(self) -> None:
        self._drop()
