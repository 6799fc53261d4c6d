"""The record of erasures: who was erased (or which time range), when, by which key, how
many events went, and when what was erased was gone from disk too (`on_disk_at`). The record
holds the erased ids, as the proof a regulator asks for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.storage.metadata import add_columns, create_tables

schema = sa.MetaData()
erasures = sa.Table(
    "erasures",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False, index=True),
    sa.Column("user_id", sa.String(255), nullable=True),  # None for a time range
    sa.Column("ids", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime, nullable=True),
    sa.Column("until", sa.DateTime, nullable=True),
    sa.Column("events", sa.BigInteger, nullable=False),  # from the Warehouse
    sa.Column("log_events", sa.BigInteger, nullable=False),  # tombstoned in the Log
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("requested_at", sa.DateTime, nullable=False),
    sa.Column("on_disk_at", sa.DateTime, nullable=True),  # None until scrubbed from disk
    sqlite_autoincrement=True,
)


def _when(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value else None


class ErasureStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)
        add_columns(engine, erasures)

    def record(
        self,
        project_id: int,
        key_id: str,
        *,
        user_id: str | None,
        ids: list[str],
        since: datetime | None,
        until: datetime | None,
        events: int,
        log_events: int,
    ) -> dict[str, Any]:
        row = {
            "project_id": project_id,
            "user_id": user_id,
            "ids": msgspec.json.encode(ids).decode(),
            "since": since,
            "until": until,
            "events": events,
            "log_events": log_events,
            "key_id": key_id,
            "requested_at": datetime.now(UTC).replace(tzinfo=None),
            "on_disk_at": None,
        }
        with self.engine.begin() as conn:
            made = conn.execute(erasures.insert().values(**row))
            key = made.inserted_primary_key
        assert key is not None
        return self._shown({"id": int(key[0]), **row})

    def list(self, project_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(erasures)
                .where(erasures.c.project_id == project_id)
                .order_by(erasures.c.id)
            ).all()
        return [self._shown(dict(r._mapping)) for r in rows]

    def waiting(self) -> tuple[tuple[int, ...], datetime | None]:
        """The erasures (of every project) not yet scrubbed from disk, and the latest one's
        time."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(erasures.c.id, erasures.c.requested_at).where(
                    erasures.c.on_disk_at.is_(None)
                )
            ).all()
        return tuple(r[0] for r in rows), max((r[1] for r in rows), default=None)

    def on_disk(self, ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                erasures.update()
                .where(erasures.c.id.in_(ids))
                .values(on_disk_at=datetime.now(UTC).replace(tzinfo=None))
            )

    @staticmethod
    def _shown(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "user_id": row["user_id"],
            "ids": msgspec.json.decode(row["ids"]),
            "since": _when(row["since"]),
            "until": _when(row["until"]),
            "events": row["events"],
            "log_events": row["log_events"],
            "key_id": row["key_id"],
            "requested_at": _when(row["requested_at"]),
            "on_disk_at": _when(row["on_disk_at"]),
        }
