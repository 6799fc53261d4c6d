"""Events out as NDJSON, CSV or Parquet, encoded a record batch at a time as they stream.

The columns are the stored ones (storage/warehouse/schema.py) without `project_id`; in NDJSON the JSON
columns (properties, traits, context, integrations) are objects, times are ISO 8601 UTC.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from roost.storage.warehouse.schema import EVENT_COLUMNS

JSON_COLUMNS = frozenset(c.name for c in EVENT_COLUMNS if c.json)
FORMATS = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode


def _row(row: dict[str, Any]) -> bytes:
    for name in JSON_COLUMNS:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = _decode(value)
    for name, value in row.items():
        if hasattr(value, "isoformat"):
            row[name] = value.isoformat() + ("Z" if value.tzinfo is None else "")
    return _encode(row)


def ndjson(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    for batch in batches:
        rows = batch.to_pylist()
        if rows:
            yield b"\n".join(_row(r) for r in rows) + b"\n"


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


def csv(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    buffer = io.BytesIO()
    writer: pa_csv.CSVWriter | None = None
    for batch in batches:
        if writer is None:
            writer = pa_csv.CSVWriter(buffer, batch.schema)
        writer.write_batch(batch)
        yield _drain(buffer)
    if writer is not None:
        writer.close()
        yield _drain(buffer)


def parquet(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    buffer = io.BytesIO()
    writer: pq.ParquetWriter | None = None
    for batch in batches:
        if writer is None:
            writer = pq.ParquetWriter(buffer, batch.schema, compression="zstd")
        writer.write_batch(batch)  # one row group per batch
        yield _drain(buffer)
    if writer is not None:
        writer.close()
        yield _drain(buffer)


ENCODERS: dict[str, Callable[[Iterable[pa.RecordBatch]], Iterator[bytes]]] = {
    "ndjson": ndjson,
    "csv": csv,
    "parquet": parquet,
}
