"""NATS: publish each event to a subject; through JetStream when a stream captures it.

`subject` may hold `{type}` and `{event}` (the event name, with characters NATS subjects
cannot hold replaced by `_`). Through JetStream each publish waits for the stream's ack and
carries `Nats-Msg-Id: <messageId>`, so the stream drops an event sent twice; without a
stream, a core NATS publish is flushed to the server and is at most once by nature.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from roost.destinations.base import DeliveryError, no_other_options, option

_UNSAFE = re.compile(r"[\s.*>]+")


async def _quiet(error: Exception) -> None:
    """Connection errors surface as a failed delivery; the client's own log of them is noise."""


class NatsSubject:
    def __init__(self, options: dict[str, Any]) -> None:
        no_other_options(options, {"url", "subject", "timeout"})
        self.url: str = option(options, "url", str, "nats://127.0.0.1:4222")
        self.subject: str = option(options, "subject", str)
        self.timeout = float(option(options, "timeout", (int, float), 10.0))
        self.loop = asyncio.new_event_loop()
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.streams: dict[str, bool] = {}

    def _subject(self, event: dict[str, Any]) -> str:
        name = _UNSAFE.sub("_", str(event.get("event") or event.get("name") or "_")) or "_"
        return self.subject.replace("{type}", event["type"]).replace("{event}", name)

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        if self.nc is None or not self.nc.is_connected:
            self.nc = await nats.connect(
                self.url,
                connect_timeout=self.timeout,
                allow_reconnect=False,  # the forwarder retries, with its own backoff
                max_reconnect_attempts=0,
                error_cb=_quiet,
            )
            self.js = self.nc.jetstream(timeout=self.timeout)
            self.streams.clear()
        assert self.js is not None
        return self.nc, self.js

    async def _has_stream(self, js: JetStreamContext, subject: str) -> bool:
        if subject not in self.streams:
            try:
                await js.find_stream_name_by_subject(subject)
                self.streams[subject] = True
            except NotFoundError:
                self.streams[subject] = False
        return self.streams[subject]

    async def _publish(self, events: list[dict[str, Any]]) -> None:
        nc, js = await self._connect()
        pending: list[Any] = []
        for event in events:
            subject = self._subject(event)
            data = msgspec.json.encode(event)
            if await self._has_stream(js, subject):
                headers = {"Nats-Msg-Id": event["messageId"]}
                pending.append(js.publish(subject, data, headers=headers))
            else:
                await nc.publish(subject, data)
        await asyncio.wait_for(asyncio.gather(*pending), self.timeout)
        await nc.flush(timeout=max(1, int(self.timeout)))

    def deliver(self, events: list[dict[str, Any]]) -> None:
        try:
            # One bound on the whole batch: connecting to a server that is down can otherwise wait
            # on the client's own schedule rather than ours.
            self.loop.run_until_complete(asyncio.wait_for(self._publish(events), 3 * self.timeout))
        except (NatsError, OSError, TimeoutError) as exc:
            self.loop.run_until_complete(self._drop())
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    async def _drop(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to learn
                await self.nc.close()
            self.nc = None

    def close(self) -> None:
        self.loop.run_until_complete(self._drop())
        self.loop.close()
