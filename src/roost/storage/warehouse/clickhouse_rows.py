"""ClickHouse's rows (JSONEachRow lines) made from the Log's stored JSON: the worker's
per-event work when it loads ClickHouse, so it is written for speed.

The Log stores each event as Roost's `Event` encodes it. Decoding that into dicts and
re-encoding every member cost ~16 µs an event (a worker could not load 60,000 events/s);
here one typed decode per group keeps the JSON members (traits, context, integrations) as the
raw bytes they were stored as, times stored in UTC are cut to ClickHouse's
'YYYY-MM-DD hh:mm:ss' without parsing, and one Struct per row is encoded in C: ~6 µs. A group
the typed decode refuses (written by an older Roost in another shape) goes the slow,
forgiving way, event by event, and loads all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec.structs import astuple

from roost.dialects.clock import STORABLE, storable
from roost.storage.log import Group
from roost.storage.warehouse.schema import EVENT_COLUMNS, Column

KEYED = ("properties",)  # JSON columns whose top level members `prop` reads
_encode = msgspec.json.Encoder().encode
_decode_dicts = msgspec.json.Decoder(list[dict[str, Any]]).decode


def _stored_type(column: Column) -> Any:
    """How the typed decode reads a column: JSON members stay raw unless their keys are
    needed; everything else as the Event holds it."""
    if column.name in KEYED:
        return dict[str, Any] | None
    if column.json:
        return msgspec.Raw
    return {"INTEGER": int, "DOUBLE": float | None, "BOOLEAN": bool | None}.get(
        column.duckdb, str | None
    )


_Stored = msgspec.defstruct(
    "_Stored",
    [(c.name, _stored_type(c), None) for c in EVENT_COLUMNS],  # the Log's extra members
    forbid_unknown_fields=False,  # (the IP, kept for destinations) are not columns
)
_decode_stored = msgspec.json.Decoder(list[_Stored]).decode  # type: ignore[valid-type]
_Row = msgspec.defstruct(
    "_Row",
    [("log_offset", int)]
    + [(c.name, Any) for c in EVENT_COLUMNS]
    + [(f"{name}_{part}", list[str]) for name in KEYED for part in ("keys", "values")],
)
_NAMES = [c.name for c in EVENT_COLUMNS]
_TIMES = [i for i, c in enumerate(EVENT_COLUMNS) if c.duckdb == "TIMESTAMP"]
_RAW = [i for i, c in enumerate(EVENT_COLUMNS) if c.json and c.name not in KEYED]
_PROPERTIES = _NAMES.index("properties")
_BOT = _NAMES.index("bot")
_EMPTY = (b"null", b"")


def text(value: Any) -> str:
    """A JSON member as text, as DuckDB's json_extract_string gives it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return _encode(value).decode()


def clickhouse_time(value: str | None) -> str | None:
    """An ISO 8601 time from the Log as ClickHouse's 'YYYY-MM-DD hh:mm:ss' in UTC."""
    if value is None:
        return None
    if len(value) >= 20 and value[10] == "T" and value[-1] == "Z" and "1970" <= value[:4] <= "2105":
        return f"{value[:10]} {value[11:19]}"  # stored in UTC: the common case, cut
    parsed = datetime.fromisoformat(value)
    parsed = parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if not storable(parsed):  # written before ingest refused such times: never wedge a load
        parsed = min(max(parsed, STORABLE[0]), STORABLE[1] - timedelta(seconds=1))
    return f"{parsed:%Y-%m-%d %H:%M:%S}"


def _fast(first: int, blob: bytes, keep: Callable[[int], bool]) -> Iterable[bytes]:
    for i, event in enumerate(_decode_stored(blob)):
        if not keep(first + i) or not getattr(event, "project_id", 0):  # 0: a tombstone
            continue
        values = list(astuple(event))
        for j in _TIMES:
            values[j] = clickhouse_time(values[j])
        for j in _RAW:  # missing (None), null, or the member's JSON as stored
            raw = b"" if values[j] is None else bytes(values[j])
            values[j] = "{}" if raw in _EMPTY else raw.decode()
        values[_BOT] = 1 if values[_BOT] else 0  # left out when false (model.Event)
        properties = values[_PROPERTIES]
        if properties:
            values[_PROPERTIES] = _encode(properties).decode()
            keys, texts = list(properties), [text(v) for v in properties.values()]
        else:
            values[_PROPERTIES], keys, texts = "{}", [], []
        yield _encode(_Row(first + i, *values, keys, texts))


def _slow(first: int, blob: bytes, keep: Callable[[int], bool]) -> Iterable[bytes]:
    for i, event in enumerate(_decode_dicts(blob)):
        if not keep(first + i) or not event.get("project_id"):  # a tombstone
            continue
        row: dict[str, Any] = {"log_offset": first + i}
        for c in EVENT_COLUMNS:
            value = event.get(c.name)
            if c.duckdb == "TIMESTAMP":
                value = clickhouse_time(value)
            elif c.json:
                members = value or {}
                value = _encode(members).decode()
                if c.name in KEYED:
                    row[f"{c.name}_keys"] = list(members)
                    row[f"{c.name}_values"] = [text(v) for v in members.values()]
            elif c.name == "bot":
                value = 1 if value else 0
            row[c.name] = value
        yield _encode(row)


def rows(groups: Iterable[Group], keep: Callable[[int], bool]) -> list[bytes]:
    """One JSONEachRow line per event of `groups` whose offset `keep` accepts."""
    lines: list[bytes] = []
    for first, _, blob in groups:
        try:
            made = list(_fast(first, blob, keep))
        except msgspec.ValidationError:  # another shape: every event of the group again
            made = list(_slow(first, blob, keep))
        lines += made
    return lines
