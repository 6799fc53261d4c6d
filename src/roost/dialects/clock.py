"""An event's times, from what the client sent: Segment's rules, in UTC, in storable range.

An explicit `timestamp` is the event's time as it stands. Otherwise a device's clock may be
off by hours, but the gap between when it says an event happened (`originalTimestamp`) and
when it sent it (`sentAt`) is still right, so that gap is measured back from the server's
own clock: `timestamp = receivedAt - (sentAt - originalTimestamp)`. A `sentAt` that would
move the event absurdly far (a clock at year 1, a bad serializer) is ignored, and the event
says so in `context.roost.clock`, rather than landing in year 4052.

Every time is converted to UTC at the instant it names: an offset is applied, a time without
one is taken as UTC, and a date alone is midnight UTC. Every engine must hold every stored
time exactly, and ClickHouse's DateTime spans 1970–2105: an event whose own time falls
outside is refused by name; a client's `originalTimestamp` or `sentAt` outside it is not
stored (the note keeps what was sent).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

import msgspec

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # a clock correction never goes before this
LATEST_AHEAD = timedelta(days=1)  # nor more than this after receipt
DEFAULT_MAX_SKEW = timedelta(days=365)
STORABLE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 1, 1, tzinfo=UTC))
OUT_OF_RANGE = "must fall between 1970-01-01 and 2105-12-31 once converted to UTC"

_rfc3339 = msgspec.json.Decoder(datetime).decode


ISO_RULE = "must be an ISO 8601 date-time or date (2026-11-29T10:00:00+01:00, 2026-11-29)"


class BadTime(ValueError):
    """A time a client sent that cannot be an event's time; the message is the rule."""


class OutOfRange(BadTime):
    """The instant cannot be stored (outside what every engine holds, or the calendar)."""


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a time without an offset is already UTC.

    Raises OutOfRange when the instant falls outside years 1–9999 in UTC.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise OutOfRange(OUT_OF_RANGE) from None


def read(text: str) -> datetime:
    """The instant an ISO 8601 date-time (any offset, or none) or date names, in UTC.

    Raises BadTime naming the rule it breaks: not such a text, or not storable.
    """
    try:
        value = utc(_rfc3339(msgspec.json.encode(text)))
    except msgspec.ValidationError:
        try:
            if len(text) == 10:
                value = datetime.combine(date.fromisoformat(text), time(), UTC)
            else:
                value = utc(datetime.fromisoformat(text))
        except OutOfRange:
            raise
        except ValueError:
            raise BadTime(ISO_RULE) from None
    if not storable(value):
        raise OutOfRange(OUT_OF_RANGE)
    return value


def from_millis(millis: float) -> datetime:
    """The instant of epoch milliseconds, in UTC; raises OutOfRange if it is not storable."""
    try:
        value = datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise OutOfRange(OUT_OF_RANGE) from None
    if not storable(value):
        raise OutOfRange(OUT_OF_RANGE)
    return value


def storable(value: datetime) -> bool:
    return STORABLE[0] <= value < STORABLE[1]


class Times(NamedTuple):
    timestamp: datetime
    original: datetime | None
    sent: datetime | None
    note: str | None  # why something the client sent was not used or not stored


def event_times(
    explicit: datetime | None,
    original: datetime | None,
    sent: datetime | None,
    received: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> Times:
    """The event's times in UTC. Raises OutOfRange if the event's own time cannot be stored."""
    original = utc(original) if original is not None else None
    sent = utc(sent) if sent is not None else None
    notes = []
    if explicit is not None:
        timestamp = utc(explicit)
    elif original is None:
        timestamp = received
    elif sent is None:
        timestamp = original
    else:
        timestamp, why = _corrected(original, sent, received, max_skew)
        if why:
            notes.append(f"sentAt {sent.isoformat()} ignored for clock correction: {why}")
    if not storable(timestamp):
        raise OutOfRange(OUT_OF_RANGE)
    if original is not None and not storable(original):
        notes.append(f"originalTimestamp {original.isoformat()} not stored: {OUT_OF_RANGE}")
        original = None
    if sent is not None and not storable(sent):
        if not notes:
            notes.append(f"sentAt {sent.isoformat()} not stored: {OUT_OF_RANGE}")
        sent = None
    return Times(timestamp, original, sent, "; ".join(notes) or None)


def _corrected(
    original: datetime, sent: datetime, received: datetime, max_skew: timedelta
) -> tuple[datetime, str | None]:
    shift = received - sent
    if abs(shift) > max_skew:
        return original, f"moves the event by {_span(shift)}, more than {_span(max_skew)}"
    try:
        corrected = original + shift
    except OverflowError:
        return original, "would put the event outside the calendar"
    if corrected < EARLIEST:
        return original, "would put the event before 2000"
    if corrected > received + LATEST_AHEAD:
        return original, "would put the event more than a day after it was received"
    return corrected, None


def _span(delta: timedelta) -> str:
    days = abs(delta).days
    return f"{days} days" if days else f"{abs(delta).total_seconds():.0f} s"
