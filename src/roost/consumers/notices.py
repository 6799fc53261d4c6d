"""Budget notices, sent: when a workspace's events this month cross 80% and 100% of its
budget, an email through the workspace's SMTP server and/or a POST to its webhook, once per
month and threshold (the record's insert is the claim: storage/metadata/notices.py), with the outcome
recorded for the settings page. A thread of its own sends them, so ingest never waits on a
mail server."""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx

from roost.storage.metadata.notices import Channels, NoticeStore

log = logging.getLogger("roost.consumers.notices")

SEND_SECONDS = 15.0  # a mail server or webhook slower than this has failed

Notice = tuple[int, str, int, int, int]  # workspace id, month (YYYY-MM), threshold %, used, budget


class Notifier:
    def __init__(
        self,
        store: NoticeStore,
        recipients: Callable[[int], list[str]],
        workspace_name: Callable[[int], str],
    ) -> None:
        self.store = store
        self.recipients = recipients  # the workspace's owners, when no address is set
        self.workspace_name = workspace_name
        self._queue: queue.Queue[Notice | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="roost-notices", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self, workspace_id: int, month: str, threshold: int, used: int, budget: int) -> None:
        """From the ingest path: queued, never waited on."""
        self._queue.put((workspace_id, month, threshold, used, budget))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=SEND_SECONDS * 2)

    def _run(self) -> None:
        while (notice := self._queue.get()) is not None:
            try:
                self.send(*notice)
            except Exception:
                log.exception("a budget notice failed")

    def send(self, workspace_id: int, month: str, threshold: int, used: int, budget: int) -> bool:
        """Send the notice unless it was sent already; whether it was sent now."""
        if not self.store.claim(workspace_id, month, threshold, used, budget):
            return False
        channels = self.store.channels(workspace_id)
        name = self.workspace_name(workspace_id)
        text = (
            f"Workspace {name} has stored {used:,} events in {month}: {threshold}% of its "
            f"monthly budget of {budget:,}."
            + (" Ingest refuses further events until the month ends." if threshold >= 100 else "")
        )
        email = webhook = None
        if channels.smtp_host:
            subject = f"Roost: workspace {name} has used {threshold}% of its event budget"
            email = self._email(channels, workspace_id, subject, text)
        if channels.webhook_url:
            payload = {
                "type": "budget_notice", "workspace": name, "workspace_id": workspace_id,
                "month": month, "threshold": threshold, "used": used, "budget": budget,
                "message": text, "sent_at": datetime.now(UTC).isoformat(),
            }  # fmt: skip
            webhook = _post(channels.webhook_url, payload)
        self.store.outcome(workspace_id, month, threshold, email, webhook)
        log.warning(
            "workspace budget notice",
            extra={"workspace": workspace_id, "threshold": threshold, "used": used,
                   "budget": budget, "email": email, "webhook": webhook},
        )  # fmt: skip
        return True

    def alert(
        self, workspace_id: int, destination_id: int, day: str, text: str, payload: dict[str, Any]
    ) -> bool:
        """A destination's backlog alert through the workspace's channels, once a day; whether
        it was sent now (called off the event loop)."""
        if not self.store.claim_alert(destination_id, day, workspace_id, text):
            return False
        email, webhook = self._deliver(workspace_id, f"Roost: {text}", text, payload)
        self.store.alert_outcome(destination_id, day, email, webhook)
        log.warning("destination backlog alert", extra={"destination": destination_id,
                                                         "email": email, "webhook": webhook})  # fmt: skip
        return True

    def digest(
        self, workspace_id: int, week: str, subject: str, text: str, payload: dict[str, Any]
    ) -> bool:
        """The week's schema drift digest, once a week; whether it was sent now."""
        if not self.store.claim_digest(workspace_id, week):
            return False
        email, webhook = self._deliver(workspace_id, subject, text, payload)
        self.store.digest_outcome(workspace_id, week, email, webhook)
        log.info("schema drift digest", extra={"workspace": workspace_id, "week": week,
                                               "email": email, "webhook": webhook})  # fmt: skip
        return True

    def _deliver(
        self, workspace_id: int, subject: str, text: str, payload: dict[str, Any]
    ) -> tuple[str | None, str | None]:
        """Through the workspace's channels: (email outcome, webhook outcome), None where
        the channel is not set."""
        channels = self.store.channels(workspace_id)
        email = webhook = None
        if channels.smtp_host:
            email = self._email(channels, workspace_id, subject, text)
        if channels.webhook_url:
            webhook = _post(channels.webhook_url, {**payload, "message": text,
                                                   "sent_at": datetime.now(UTC).isoformat()})  # fmt: skip
        return email, webhook

    def _email(self, channels: Channels, workspace_id: int, subject: str, text: str) -> str:
        to = [a.strip() for a in (channels.mail_to or "").split(",") if a.strip()]
        to = to or self.recipients(workspace_id)
        if not to:
            return "failed: no address (set mail_to, or add an owner)"
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = channels.mail_from or ""
        message["To"] = ", ".join(to)
        message.set_content(text)
        host, tls = channels.smtp_host or "", channels.smtp_tls
        port = channels.smtp_port or (465 if tls == "tls" else 587 if tls == "starttls" else 25)
        try:
            if tls == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=SEND_SECONDS, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(host, port, timeout=SEND_SECONDS)
            with smtp:
                if tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if channels.smtp_user:
                    smtp.login(channels.smtp_user, channels.smtp_password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            return f"failed: {type(exc).__name__}: {exc}"
        return f"sent to {', '.join(to)}"


def _post(url: str, payload: dict[str, object]) -> str:
    try:
        response = httpx.post(url, json=payload, timeout=SEND_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"failed: {type(exc).__name__}: {exc}"
    if response.status_code >= 300:
        return f"failed: HTTP {response.status_code}"
    return "sent"
