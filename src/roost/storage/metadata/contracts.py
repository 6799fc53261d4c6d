"""Where tracking plans are kept: each project's contracts and its policy for unplanned events
(what they mean and how they run: pipeline/plan.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from roost.errors import BadRequest
from roost.pipeline.plan import UNPLANNED, Contract, Plan, check, compile_plan
from roost.storage.metadata import create_tables, delete_row, replace_row

schema = sa.MetaData()
contracts = sa.Table(
    "contracts",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("target", sa.String(255), primary_key=True),
    sa.Column("json_schema", sa.Text, nullable=False),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
plans = sa.Table(
    "tracking_plans",
    schema,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("unplanned", sa.String(10), nullable=False),
)


class ContractStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    def set(
        self, project_id: int, target: str, json_schema: dict[str, Any], action: str
    ) -> Contract:
        check(target, json_schema, action)
        with self.engine.begin() as conn:
            replace_row(
                conn,
                contracts,
                project_id=project_id,
                target=target,
                json_schema=msgspec.json.encode(json_schema).decode(),
                action=action,
                updated_at=datetime.now(UTC).replace(tzinfo=None),
            )
        return Contract(target, json_schema, action)

    def delete(self, project_id: int, target: str) -> None:
        with self.engine.begin() as conn:
            delete_row(conn, contracts, project_id=project_id, target=target)

    def replace(self, project_id: int, found: list[Contract]) -> None:
        """The project's contracts become exactly these."""
        with self.engine.begin() as conn:
            conn.execute(contracts.delete().where(contracts.c.project_id == project_id))
            for contract in found:
                conn.execute(
                    contracts.insert().values(
                        project_id=project_id,
                        target=contract.target,
                        json_schema=msgspec.json.encode(contract.schema).decode(),
                        action=contract.action,
                        updated_at=datetime.now(UTC).replace(tzinfo=None),
                    )
                )

    def set_unplanned(self, project_id: int, unplanned: str) -> None:
        if unplanned not in UNPLANNED:
            raise BadRequest(
                f"unplanned: must be one of {', '.join(UNPLANNED)} (got {unplanned!r})",
                field="unplanned",
            )
        with self.engine.begin() as conn:
            replace_row(conn, plans, project_id=project_id, unplanned=unplanned)

    def list(self, project_id: int) -> tuple[list[Contract], str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(contracts)
                .where(contracts.c.project_id == project_id)
                .order_by(contracts.c.target)
            ).all()
            unplanned = conn.execute(
                sa.select(plans.c.unplanned).where(plans.c.project_id == project_id)
            ).first()
        found = [Contract(r.target, msgspec.json.decode(r.json_schema), r.action) for r in rows]
        return found, unplanned[0] if unplanned else "allow"

    def plan(self, project_id: int) -> Plan:
        """The project's plan; a schema is compiled once, not at every reload of the plan."""
        return compile_plan(*self.list(project_id))
