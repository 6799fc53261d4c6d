"""What every dialect shares: the request it is given, what it hands on, how it answers.

A dialect is sans-I/O: it turns (path, headers, body) into canonical events and per-event
outcomes, and turns the pipeline's result or a ClientError into (status, body, headers) in
its own wire shape. It never touches storage or the network.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar

import msgspec

from roost.dialects.clock import DEFAULT_MAX_SKEW
from roost.errors import BadRequest, RoostError
from roost.model import Event, Outcome, Reason, new_message_id

T = TypeVar("T")


class IngestRequest(NamedTuple):  # a NamedTuple: made on every request, 4x cheaper
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes  # already decompressed and within the size limit
    client_ip: str | None
    received_at: datetime  # the server's clock, UTC
    max_event_bytes: int = 32768
    max_clock_skew: timedelta = DEFAULT_MAX_SKEW  # a larger sentAt correction is ignored
    query: str = ""  # the query string, for dialects that read it (PostHog's compression)
    max_request_bytes: int = 524288  # what a body may be once decompressed


@dataclass
class Parsed:
    """A request as a dialect understood it: the key it carried and its candidate events."""

    key: str | None
    total: int  # how many events the request held, good or bad
    single: bool  # one event per request: a refusal answers the whole request
    events: list[Event] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # each event's place in the request
    outcomes: list[Outcome] = field(default_factory=list)
    site: str | None = None  # the project slug the request claims (web dialect's site_id)
    prefix: str = ""  # how the request names its items: "batch", "events", or "" for one
    made: set[str] = field(default_factory=set)  # messageIds Roost made: none was sent
    # a key-less request (Plausible's, Umami's): how it names its project — ("domain" or
    # "website", the name, the field it is in); storage/metadata/sites.py finds the project
    named: tuple[str, str, str] | None = None

    def new_id(self) -> str:
        """A messageId for an event sent without one: unique, so never deduplicated."""
        made = new_message_id()
        self.made.add(made)
        return made

    def field(self, index: int, name: str) -> str:
        return f"{self.prefix}[{index}].{name}" if self.prefix else name

    def add(self, index: int, event: Event) -> None:
        self.indexes.append(index)
        self.events.append(event)

    def oversized(self, index: int, raw: bytes, max_bytes: int) -> bool:
        """Refuse a batch item over `max_bytes` as stored (413 for it alone); True if it was."""
        if not over_size(raw, max_bytes):
            return False
        where = self.field(index, "").rstrip(".")
        self.reject(index, Reason.TOO_LARGE, f"{where}: event must be at most {max_bytes} bytes",
                    where, 413)  # fmt: skip
        return True

    def item(
        self, index: int, raw: bytes, decoder: msgspec.json.Decoder[T], max_bytes: int
    ) -> T | None:
        """A batch item decoded, or None with it rejected alone: too large, nested too deep,
        not JSON (invalid UTF-8, NaN), or breaking a field's rule (named)."""
        if self.oversized(index, raw, max_bytes):
            return None
        if too_deep(bytes(raw)):  # a msgspec.Raw: a view, without bytes' methods
            where = self.field(index, "").rstrip(".")
            message = f"{where}: nested more than {MAX_DEPTH} levels deep"
            self.reject(index, Reason.INVALID_REQUEST, message, where)
            return None
        try:
            return decoder.decode(raw)
        except msgspec.ValidationError as exc:
            where = self.field(index, "").rstrip(".")
            field, rule = validation_field(exc, where)
            self.reject(index, Reason.INVALID_REQUEST, describe(field, rule), field)
        except (msgspec.DecodeError, RecursionError) as exc:
            where = self.field(index, "").rstrip(".")
            problem = json_problem(bytes(raw), exc)
            self.reject(index, Reason.INVALID_REQUEST, f"{where}: {problem}", where)
        return None

    def reject(
        self,
        index: int,
        reason: Reason,
        message: str,
        field: str | None,
        status: int = 400,
        more: list[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse one event; `more` are further (field, rule) it breaks, reported with it."""
        self.outcomes.append(
            Outcome(
                index=index, reason=reason, message=message, field=field, status=status,
                more=tuple(more or ()),
            )
        )  # fmt: skip


class Result(NamedTuple):
    """What happened to a request's events after the pipeline and the Log."""

    total: int
    single: bool
    stored: list[Event]
    outcomes: list[Outcome]
    received_at: datetime
    warnings: tuple[dict[str, Any], ...] = ()  # schema drift (pipeline/drift.py): told, not refused

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.stored]

    @property
    def accepted(self) -> int:
        return self.total - len(self.refused)


class Reply(NamedTuple):
    status: int
    body: Any
    headers: Mapping[str, str] = MappingProxyType({})


class Dialect(Protocol):
    name: str

    def parse(self, request: IngestRequest) -> Parsed:
        """Events and per-event outcomes; raises ClientError if the envelope is unusable."""
        ...

    def respond(self, result: Result) -> Reply:
        """The answer to a request whose events went through."""
        ...

    def refuse(self, error: RoostError, total: int) -> Reply:
        """The answer to a request refused as a whole (a BackendError too: a 503)."""
        ...


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key of any header scheme of docs/wire-contracts.md: Basic `key:`, Bearer, X-Write-Key, or
    x-eventbunker-write-key (the free-form dialect's document)."""
    auth = headers.get("authorization", "").strip()
    if auth:
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return value
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, password = decoded.partition(":")
            return user or password or None
    return (
        headers.get("x-write-key", "").strip()
        or headers.get("x-eventbunker-write-key", "").strip()  # 002's documented header
        or None
    )


def retry_headers(error: RoostError) -> dict[str, str]:
    retry_after = getattr(error, "retry_after", None)
    return {"Retry-After": str(retry_after)} if retry_after is not None else {}


_PATH_PART = re.compile(r"at `\$(.*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def validation_field(error: msgspec.ValidationError, prefix: str = "") -> tuple[str | None, str]:
    """(field path, rule) from msgspec's message, e.g. ('batch[2].userId', 'expected str')."""
    text = str(error)
    message, _, _ = text.partition(" - at `")
    path_match = _PATH_PART.search(text)
    path = path_match.group(1).lstrip(".") if path_match else ""
    missing = _MISSING.search(text)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        message = "is required"
    else:
        message = message[:1].lower() + message[1:]
        message = message.replace("`", "")
    full = f"{prefix}.{path}" if prefix and path else (prefix or path)
    return (full or None), message


def over_size(raw: bytes, max_bytes: int) -> bool:
    """Whether an event's JSON is over `max_bytes` as Roost stores it: UTF-8, escapes undone.
    A library that writes every non-ASCII character as \\uXXXX (Python's json, by default)
    sends CJK text at twice its stored size; only text over the limit that holds escapes is
    decoded to be measured again."""
    if len(raw) <= max_bytes:
        return False
    data = bytes(raw)
    if b"\\u" not in data or len(data) > 6 * max_bytes or too_deep(data):
        return True
    try:
        return len(_encode(msgspec.json.decode(data))) > max_bytes
    except (msgspec.DecodeError, RecursionError):
        return True  # not JSON: its own error is reported when it is decoded


_encode = msgspec.json.Encoder().encode
MAX_DEPTH = 64  # levels of JSON nesting an event may have (Python walks some recursively)
_BYTE = re.compile(r"\(byte (\d+)\)")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)  # linear: the alternatives start apart
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"{}[]")


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON text nests deeper than `limit` (strings' brackets not counted). Nearly
    free for what clients send: only text with more brackets than the limit is scanned."""
    if data.count(b"{") + data.count(b"[") <= limit:
        return False
    depth = 0
    for c in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        depth += 1 if c in (123, 91) else -1  # { [
        if depth > limit:
            return True
    return False


def json_problem(data: bytes, error: Exception) -> str:
    """Why text is not JSON Roost takes, in words naming what is wrong."""
    if isinstance(error, RecursionError):
        return f"nested more than {MAX_DEPTH} levels deep"
    text = str(error)
    found = _BYTE.search(text)
    if found:
        rest = data[int(found.group(1)) :].lstrip(b"-")
        for word in (b"NaN", b"Infinity"):
            if rest.startswith(word):
                return f"{word.decode()} is not a JSON number (byte {found.group(1)})"
    if "UTF-8" in text:
        return "not valid UTF-8 text"
    return f"not valid JSON ({text})"


def decode_body(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """The request's envelope, or a 400 naming the field and the rule it breaks."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        field, rule = validation_field(exc)
        raise BadRequest(describe(field, rule), field=field) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"body: {json_problem(body, exc)}", field="body") from None


def decode_single(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """A one-event body: its nesting bounded, then decoded as `decode_body` does."""
    if too_deep(body):
        raise BadRequest(f"body: nested more than {MAX_DEPTH} levels deep", field="body")
    return decode_body(decoder, body)


def counted(items: list[Any], field: str, most: int) -> int:
    """How many items a batch holds; a 400 naming the field unless 1 to `most`."""
    if not 1 <= len(items) <= most:
        raise BadRequest(f"{field}: must hold 1–{most} events (got {len(items)})", field=field)
    return len(items)


def describe(field: str | None, message: str) -> str:
    return f"{field}: {message}" if field else message


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
