"""The canonical event every dialect produces, and the outcome of every event not stored.

`Event`'s fields are, in order, the columns of the events table (storage/warehouse/schema.py checks
that at import), so an event encoded as JSON by the Log parses straight into them. `ip` is the one transient field: enrichment reads it and clears it,
and it is never written anywhere.
"""

from __future__ import annotations

import enum
import itertools
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")
NAMED_TYPES: tuple[str, ...] = ("track", "page", "screen")  # the calls an event name names


def label_of(event_type: str, name: str | None) -> str:
    """What a tracking plan (and the drift stage) calls an event: its name for a named call,
    else `type:<call>`."""
    return name if event_type in NAMED_TYPES and name else f"type:{event_type}"


JSONObject = dict[str, Any]


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Encoded without the fields at their defaults (None, false, empty objects): the Log's
    JSON of a typical event is ~40% smaller, and the Warehouse parses it ~25% faster
    (bench/RESULTS.md, 2026-12-05). What shows an event to a user takes `as_dict`."""

    message_id: str
    project_id: int
    dialect: str
    type: str
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    session_id: str | None = None
    timestamp: datetime
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime
    category: str | None = None
    value: float | None = None
    dim1: str | None = None
    dim2: str | None = None
    dim3: str | None = None
    url: str | None = None
    host: str | None = None
    path: str | None = None
    referrer: str | None = None
    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    country: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
    bot: bool = False
    visitor: str | None = None
    build: str | None = None
    properties: JSONObject = msgspec.field(default_factory=dict)
    traits: JSONObject = msgspec.field(default_factory=dict)
    context: JSONObject = msgspec.field(default_factory=dict)
    integrations: JSONObject = msgspec.field(default_factory=dict)
    # Transient: the client's IP, used by enrichment and then dropped. Never stored.
    ip: str | None = None


STORED_FIELDS: tuple[str, ...] = Event.__struct_fields__[:-1]
_FIELDS = msgspec.structs.fields(Event)


def as_dict(event: Event) -> dict[str, Any]:
    """Every field, those at their defaults too (what a transformation is given and the
    debugger shows: its encoding leaves them out)."""
    given = msgspec.to_builtins(event)
    return {
        f.name: given[f.name]
        if f.name in given
        else (f.default_factory() if f.default is msgspec.NODEFAULT else f.default)
        for f in _FIELDS
    }


class LoggedEvent(msgspec.Struct, frozen=True):
    """An event as the Log holds it: with the offset its append gave it."""

    offset: int
    event: Event


class Reason(enum.StrEnum):
    """Why an event was not stored (or stored only once): the `reason` of an outcome."""

    INVALID_REQUEST = "invalid_request"
    INVALID_PROPS = "invalid_props"
    DUPLICATE = "duplicate"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    CONTRACT_VIOLATION = "contract_violation"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    TIER_LIMIT = "tier_limit"
    CONSENT_REQUIRED = "consent_required"
    TOO_LARGE = "too_large"
    FILTERED = "filtered"
    SAMPLED = "sampled"
    TRANSFORMATION_FAILED = "transformation_failed"


class Outcome(msgspec.Struct, kw_only=True):
    """Why one event of a request was not stored (or was stored only once).

    `status` is the HTTP status a single-event request answers with; in a batch the event is
    reported in the response's `errors` and the rest go in.
    """

    index: int
    reason: Reason
    message: str
    field: str | None = None
    status: int = 400
    stored: bool = False
    more: tuple[tuple[str, str], ...] = ()  # further (field, rule) the same event breaks
    message_id: str | None = None  # the event's, when a stage refused it (for traces)


# Who sends and reads: workspaces hold projects, projects hold keys.
KEY_KINDS = ("write", "read", "delete", "admin", "jwt-secret")
PLANS = ("free", "pro", "enterprise")
KEY_PREFIX = {"write": "rw_", "read": "rr_", "delete": "rd_", "admin": "ra_", "jwt-secret": "rj_"}


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    plan: str
    monthly_budget: int | None


@dataclass(frozen=True)
class Project:
    id: int
    workspace_id: int
    slug: str
    name: str
    store_ip: bool


@dataclass(frozen=True)
class Key:
    """A key as the ingest path needs it: its kind, limits, project and workspace."""

    id: str
    kind: str
    label: str | None
    prefix: str
    project_id: int
    project_slug: str
    workspace_id: int
    plan: str
    monthly_budget: int | None
    store_ip: bool
    allowed_types: tuple[str, ...] | None
    rate: float | None
    burst: float | None
    created_at: datetime
    revoked_at: datetime | None
    hourly: float | None = None


_counter = itertools.count()
_prefix = secrets.token_hex(8)


def _reseed() -> None:
    global _counter, _prefix
    _counter, _prefix = itertools.count(), secrets.token_hex(8)


os.register_at_fork(after_in_child=_reseed)


def new_message_id() -> str:
    """32 hex characters, unique: a random per-process prefix and a counter (uuid4 is 5× slower)."""
    return f"{_prefix}{next(_counter):016x}"
