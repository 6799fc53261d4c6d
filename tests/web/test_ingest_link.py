"""The link between an ingest process and the server: what crosses it arrives as it left."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from roost.dialects.base import IngestRequest, Reply
from roost.errors import BadRequest, ClientError, RateLimited
from roost.web.ingest_link import (
    Answered,
    Asked,
    Frame,
    Frames,
    LinkClient,
    LinkDown,
    LinkServer,
    Problem,
    frame,
)
from roost.web.intake import SEGMENT, Read
from roost.web.proxy import PEER, arrived


def _parsed(body: dict[str, Any]) -> Any:
    request = IngestRequest(
        "/v1/batch", {}, json.dumps({"batch": [body]}).encode(), "203.0.113.9",
        datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC),
    )  # fmt: skip
    return SEGMENT.parse(request)


def test_events_cross_the_link_exactly() -> None:
    """Big integers, floats, text and times: the events the server gets are the ones read."""
    parsed = _parsed({
        "type": "track", "userId": "ü-1", "event": "Bought 🦜", "messageId": "m-1",
        "timestamp": "2026-12-07T23:59:59.999999+02:00",
        "properties": {"big": 123456789012345678901234567890, "f": 0.1, "n": None,
                       "nested": {"a": [1, 2.5e-300, "x"]}, "revenue": 9.99},
    })  # fmt: skip
    parsed.reject(3, "invalid_request", "batch[3].event: is required", "batch[3].event")  # type: ignore[arg-type]
    asked = Asked(7, "segment", 0.25, "https://shop.example", "203.0.113.9",
                  datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC), parsed)  # fmt: skip
    sent = frame(asked)
    got = msgspec.json.decode(sent[4:], type=Frame)
    assert isinstance(got, Asked)
    assert got.parsed == parsed
    assert got.parsed.events[0].properties["big"] == 123456789012345678901234567890
    assert got.parsed.events[0].timestamp == datetime(2026, 12, 7, 21, 59, 59, 999999, tzinfo=UTC)
    read = got.read()
    assert read.chosen is SEGMENT and read.error is None
    assert read.request is not None and read.request.headers == {"origin": "https://shop.example"}
    assert read.request.client_ip == "203.0.113.9"


def test_a_refusal_crosses_the_link_with_its_status_code_field_and_retry() -> None:
    error = RateLimited("key: over its rate", field="key", retry_after=3)
    read = Asked(1, "segment", 0.0, problem=Problem.of(error)).read()
    assert isinstance(read.error, ClientError)
    assert (read.error.status, read.error.code, read.error.field) == (429, error.code, "key")
    assert read.error.retry_after == 3  # type: ignore[attr-defined]
    reply = SEGMENT.refuse(read.error, 1)
    assert reply.status == 429 and reply.headers == {"Retry-After": "3"}
    bad = Asked(
        2, "game", 0.0, problem=Problem.of(BadRequest("events: is required", field="events"))
    )
    assert bad.read().error is not None and bad.read().error.status == 400  # type: ignore[union-attr]


def test_frames_split_anywhere_arrive_whole_and_in_order() -> None:
    got: list[Frame] = []
    frames = Frames(got.append, lambda: None)
    messages = [
        Answered(i, 200, msgspec.Raw(b'{"success":true}'), [("Retry-After", "1")])
        for i in range(50)
    ]
    stream = b"".join(frame(m) for m in messages)
    for i in range(0, len(stream), 7):  # arbitrary chunks, frames cut mid-header and mid-body
        frames.data_received(stream[i : i + 7])
    assert [m.id for m in got] == list(range(50))  # type: ignore[union-attr]
    assert all(bytes(m.body) == b'{"success":true}' for m in got)  # type: ignore[union-attr]


def test_an_answer_comes_only_once_the_server_answered_and_a_lost_server_is_a_503(
    tmp_path: Path,
) -> None:
    asyncio.run(_answered_once_stored(tmp_path))


async def _answered_once_stored(tmp_path: Path) -> None:
    release = asyncio.Event()
    seen: list[Read] = []

    async def answer(read: Read, started: float) -> Reply:
        seen.append(read)
        await release.wait()  # the Log's commit, say
        return Reply(200, {"success": True}, {"X-Roost": "yes"})

    server = LinkServer(answer)
    path = str(tmp_path / "link.sock")
    await server.start(path)
    lost: list[bool] = []
    client = LinkClient(on_lost=lambda: lost.append(True))
    await client.connect(path, timeout=5)
    asked = asyncio.ensure_future(
        client.ask(Asked(0, "segment", 0.0, problem=Problem(400, "x", "y", None)))
    )
    await asyncio.sleep(0.05)
    assert not asked.done() and len(seen) == 1
    release.set()
    got = await asyncio.wait_for(asked, 5)
    assert (got.status, bytes(got.body), got.headers) == (
        200,
        b'{"success":true}',
        [("X-Roost", "yes")],
    )
    release.clear()
    pending = asyncio.ensure_future(
        client.ask(Asked(0, "segment", 0.0, problem=Problem(400, "x", "y", None)))
    )
    await asyncio.sleep(0.05)
    closing = asyncio.ensure_future(server.close())
    await asyncio.sleep(0.05)
    for task in server._tasks:  # the server goes away without answering
        task.cancel()
    await closing
    client._link.transport.close()  # type: ignore[union-attr]
    with pytest.raises(LinkDown):
        await asyncio.wait_for(pending, 5)
    assert lost == [True]
    with pytest.raises(LinkDown):
        await client.ask(Asked(0, "segment", 0.0))


def test_only_a_unix_socket_request_names_its_client() -> None:
    headers = [(b"host", b"roost"), (PEER, b"198.51.100.4 51234")]
    over_tcp = {"type": "http", "client": ("127.0.0.1", 4000), "server": ("127.0.0.1", 8000),
                "headers": headers}  # fmt: skip
    assert arrived(over_tcp) is over_tcp  # a network client's x-roost-peer is not believed
    over_unix = {"type": "http", "client": None, "server": ("/tmp/roost-x/http.sock", None),
                 "headers": headers}  # fmt: skip
    assert arrived(over_unix)["client"] == ("198.51.100.4", 51234)
    v6 = {**over_unix, "headers": [(PEER, b"2001:db8::1 443")]}
    assert arrived(v6)["client"] == ("2001:db8::1", 443)
    assert arrived({**over_unix, "headers": []})["client"] is None


def test_the_link_frames_the_reply_as_it_was_encoded() -> None:
    reply = Answered(3, 207, msgspec.Raw(b'{"a":[1,2]}'), [])
    data = frame(reply)
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    assert msgspec.json.decode(data[4:]) == ["answered", 3, 207, {"a": [1, 2]}, []]
