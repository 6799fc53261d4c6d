"""The SQL sandbox's gate: which statements a read key may run.

The engine itself has file and network access switched off and its configuration locked
(storage/warehouse/duckdb.py); this gate adds what the engine cannot: exactly one SELECT, reading no
table but the project's `events` view (or its own CTEs, unqualified; `roost.events` is never in the
search path, so only a qualified name could reach it), calling no table function but a few generators and
no function that reads the catalog, the settings or the environment. The statement is
parsed by DuckDB's own parser, so what is checked is what would run.
"""

from __future__ import annotations

import atexit
import datetime as dt
import decimal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
import msgspec

from roost.errors import BadRequest
from roost.storage.warehouse import QueryResult

ALLOWED_TABLES = frozenset({"events"})
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "json_each",
        "json_tree",
        "numbers",
    }  # numbers: ClickHouse's
)
DENIED_FUNCTION_PREFIXES = (
    "duckdb_",
    "pragma_",
    "read_",
    "parquet_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "iceberg_",
    "delta_",
    "icu_",
    "test_",
    "export_",
    "import_",
)
DENIED_FUNCTIONS = frozenset(
    {
        "query",
        "query_table",
        "getenv",
        "current_setting",
        "glob",
        "sniff_csv",
        "which_secret",
        "checkpoint",
        "force_checkpoint",
        "load_extension",
        "install_extension",
        "summary",
        "repeat_row",
    }
)

_parser = duckdb.connect(":memory:")
_parser_lock = threading.Lock()
atexit.register(_parser.close)


def check_select(sql: str) -> None:
    """Raise BadRequest unless `sql` is one SELECT over the `events` view only."""
    if not sql.strip():
        raise BadRequest("sql: must not be empty", field="sql")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise BadRequest(f"sql: {_first_line(exc)}", field="sql") from None
    if len(statements) != 1:
        raise BadRequest(f"sql: must be exactly one statement (got {len(statements)})", field="sql")
    if statements[0].type != duckdb.StatementType.SELECT:
        kind = statements[0].type.name
        raise BadRequest(f"sql: only SELECT is allowed (got {kind})", field="sql")
    with _parser_lock:
        row = _parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = msgspec.json.decode(row[0]) if row else {}
    if tree.get("error"):
        raise BadRequest(f"sql: {tree.get('error_message', 'cannot be parsed')}", field="sql")
    ctes = set(_cte_names(tree))
    for ref in _refs(tree):
        if ref.get("type") == "SHOW_REF":
            raise BadRequest("sql: SHOW, DESCRIBE and SUMMARIZE are not allowed", field="sql")
        name = str(ref.get("table_name", ""))
        qualified = ref.get("catalog_name") or ref.get("schema_name")
        if qualified or (name not in ALLOWED_TABLES and name not in ctes):
            shown = ".".join(ref.get("qualified_name", {}).get("path", [name]))
            raise BadRequest(f"sql: only the events view can be read (not {shown})", field="sql")
    for name, is_table in _functions(tree):
        lowered = name.lower()
        if is_table and lowered not in ALLOWED_TABLE_FUNCTIONS:
            raise BadRequest(f"sql: table function {name}() is not allowed", field="sql")
        if lowered in DENIED_FUNCTIONS or lowered.startswith(DENIED_FUNCTION_PREFIXES):
            raise BadRequest(f"sql: function {name}() is not allowed", field="sql")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _refs(tree: Any) -> Iterator[dict[str, Any]]:
    """Every table the query names (and every SHOW)."""
    for node in _walk(tree):
        if node.get("type") in ("BASE_TABLE", "SHOW_REF"):
            yield node


def _cte_names(tree: Any) -> Iterator[str]:
    for node in _walk(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                yield str(entry.get("key", ""))


def _functions(node: Any) -> Iterator[tuple[str, bool]]:
    if isinstance(node, dict):
        if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
            fn = node["function"]
            yield str(fn.get("function_name", "")), True
            yield from _functions(fn.get("arguments"))
            for key, value in node.items():
                if key != "function":
                    yield from _functions(value)
            return
        if "function_name" in node:
            yield str(node["function_name"]), False
        for value in node.values():
            yield from _functions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _functions(item)


_json = msgspec.json.encode


def cut(result: QueryResult, max_bytes: int) -> QueryResult:
    """The answer's first rows within about `max_bytes` of JSON; `truncated` if cut."""
    size = 0
    for i, row in enumerate(result.rows):
        size += len(_json(row))
        if size > max_bytes:
            return QueryResult(result.columns, result.rows[:i], True)
    return result


def plain_value(value: Any) -> Any:
    """A query result value as JSON can carry it."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
