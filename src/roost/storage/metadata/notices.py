"""Budget notices: where each workspace wants them (SMTP and/or a webhook) and the record of
those sent — one row per workspace, month and threshold, whose insert is the claim, so a
notice goes once however many nodes or restarts cross the threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from roost.errors import BadRequest
from roost.storage.metadata import create_tables, replace_row

TLS_MODES = ("starttls", "tls", "none")

schema = sa.MetaData()
channels = sa.Table(
    "notice_channels",
    schema,
    sa.Column("workspace_id", sa.Integer, primary_key=True),
    sa.Column("smtp_host", sa.String(255), nullable=True),
    sa.Column("smtp_port", sa.Integer, nullable=True),
    sa.Column("smtp_tls", sa.String(10), nullable=False),
    sa.Column("smtp_user", sa.String(255), nullable=True),
    sa.Column("smtp_password", sa.String(255), nullable=True),
    sa.Column("mail_from", sa.String(255), nullable=True),
    sa.Column("mail_to", sa.Text, nullable=True),  # comma-separated; none: the owners
    sa.Column("webhook_url", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
alerts = sa.Table(  # a destination's backlog alert: at most one a day (the insert is the claim)
    "destination_alerts",
    schema,
    sa.Column("destination_id", sa.Integer, primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD, UTC
    sa.Column("workspace_id", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("webhook", sa.Text, nullable=True),
)
digests = sa.Table(  # a workspace's weekly digest of schema drift (the insert is the claim)
    "schema_digests",
    schema,
    sa.Column("workspace_id", sa.Integer, primary_key=True),
    sa.Column("week", sa.String(8), primary_key=True),  # ISO week, as 2026-W49
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("webhook", sa.Text, nullable=True),
)
sent = sa.Table(
    "budget_notices",
    schema,
    sa.Column("workspace_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),  # YYYY-MM
    sa.Column("threshold", sa.Integer, primary_key=True),  # percent of the budget
    sa.Column("used", sa.BigInteger, nullable=False),
    sa.Column("budget", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("email", sa.Text, nullable=True),  # "sent to …", "failed: …"; None: no SMTP
    sa.Column("webhook", sa.Text, nullable=True),  # "sent", "failed: …"; None: no webhook
)


@dataclass(frozen=True)
class Channels:
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_tls: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str | None = None
    mail_to: str | None = None
    webhook_url: str | None = None

    def shown(self) -> dict[str, Any]:
        """As shown to people and the API: never the password."""
        return {
            **{k: v for k, v in self.__dict__.items() if k != "smtp_password"},
            "smtp_password": "set" if self.smtp_password else None,
        }


@dataclass(frozen=True)
class Notice:
    workspace_id: int
    month: str
    threshold: int
    used: int
    budget: int
    created_at: datetime
    email: str | None
    webhook: str | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def checked(raw: dict[str, Any]) -> Channels:
    """Channels from what a person gave, each field's rule checked."""
    unknown = set(raw) - set(Channels.__dataclass_fields__)
    if unknown:
        raise BadRequest(f"{sorted(unknown)[0]}: not a notice setting", field=sorted(unknown)[0])
    values: dict[str, Any] = {
        k: (v.strip() if isinstance(v, str) else v) or None for k, v in raw.items()
    }
    for name, value in values.items():
        longest = 2000 if name in ("mail_to", "webhook_url") else 255  # the columns' sizes
        if isinstance(value, str) and len(value) > longest:
            raise BadRequest(f"{name}: must be at most {longest} characters", field=name)
    port = values.get("smtp_port")
    if port is not None:
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise BadRequest("smtp_port: must be a port number, 1–65535", field="smtp_port")
        values["smtp_port"] = port
    tls = values.get("smtp_tls") or "starttls"
    if tls not in TLS_MODES:
        raise BadRequest(f"smtp_tls: must be one of {', '.join(TLS_MODES)}", field="smtp_tls")
    values["smtp_tls"] = tls
    url = values.get("webhook_url")
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest("webhook_url: must be an http(s) URL", field="webhook_url")
    for name in ("mail_from", "mail_to"):
        for address in str(values.get(name) or "").split(","):
            if address.strip() and "@" not in address:
                raise BadRequest(f"{name}: {address.strip()!r} is not an email address", field=name)
    if values.get("smtp_host") and not values.get("mail_from"):
        raise BadRequest("mail_from: needed to send email", field="mail_from")
    return Channels(**values)


class NoticeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, schema)

    def channels(self, workspace_id: int) -> Channels:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(channels).where(channels.c.workspace_id == workspace_id)
            ).first()
        if row is None:
            return Channels()
        found = dict(row._mapping)
        found.pop("workspace_id"), found.pop("updated_at")
        return Channels(**found)

    def set_channels(self, workspace_id: int, given: Channels) -> None:
        with self.engine.begin() as conn:
            replace_row(
                conn, channels, workspace_id=workspace_id, updated_at=_now(), **given.__dict__
            )

    def _claim(self, table: sa.Table, **row: Any) -> bool:
        """Insert a notice's row; False when it is there already (sent, or being sent): the
        insert is the claim, so a notice goes once however many nodes try."""
        try:
            with self.engine.begin() as conn:
                conn.execute(table.insert().values(**row, created_at=_now()))
        except IntegrityError:
            return False
        return True

    def _outcome(
        self, table: sa.Table, key: dict[str, Any], email: str | None, webhook: str | None
    ) -> None:
        """How a claimed notice's sending went, on its row (`key`: its primary key)."""
        with self.engine.begin() as conn:
            conn.execute(table.update().where(*(table.c[k] == v for k, v in key.items()))
                         .values(email=email, webhook=webhook))  # fmt: skip

    def claim(self, workspace_id: int, month: str, threshold: int, used: int, budget: int) -> bool:
        return self._claim(sent, workspace_id=workspace_id, month=month, threshold=threshold,
                           used=used, budget=budget)  # fmt: skip

    def claim_alert(self, destination_id: int, day: str, workspace_id: int, message: str) -> bool:
        """A destination's alert for the day."""
        return self._claim(alerts, destination_id=destination_id, day=day,
                           workspace_id=workspace_id, message=message)  # fmt: skip

    def claim_digest(self, workspace_id: int, week: str) -> bool:
        """A workspace's drift digest for the week."""
        return self._claim(digests, workspace_id=workspace_id, week=week)

    def outcome(
        self, workspace_id: int, month: str, threshold: int, email: str | None, webhook: str | None
    ) -> None:
        key = {"workspace_id": workspace_id, "month": month, "threshold": threshold}
        self._outcome(sent, key, email, webhook)

    def alert_outcome(
        self, destination_id: int, day: str, email: str | None, webhook: str | None
    ) -> None:
        self._outcome(alerts, {"destination_id": destination_id, "day": day}, email, webhook)

    def digest_outcome(
        self, workspace_id: int, week: str, email: str | None, webhook: str | None
    ) -> None:
        self._outcome(digests, {"workspace_id": workspace_id, "week": week}, email, webhook)

    def sent(self, workspace_id: int) -> list[Notice]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sent)
                .where(sent.c.workspace_id == workspace_id)
                .order_by(sent.c.month.desc(), sent.c.threshold.desc())
            ).all()
        return [Notice(**r._mapping) for r in rows]
