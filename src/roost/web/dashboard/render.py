"""Templates, the period picker and the headers every dashboard page carries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from roost.errors import BadRequest
from roost.web.dashboard import charts

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(charts=charts)

# Scripts only from this server (no inline code), nothing framing the pages, no referrer
# leaking a page's query string (filters, user ids) to other sites.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Period:
    """A date range of the Stats API and the interval its charts are bucketed by."""

    name: str
    label: str
    interval: str
    days: tuple[str, str] | None = None  # a custom range: its first and last day

    @property
    def date_range(self) -> Any:
        """As the Stats API takes it."""
        return list(self.days) if self.days else self.name


PERIODS = {
    p.name: p
    for p in (
        Period("day", "Today", "hour"),
        Period("7d", "Last 7 days", "day"),
        Period("30d", "Last 30 days", "day"),
        Period("month", "This month", "day"),
        Period("12mo", "Last 12 months", "month"),
        Period("all", "All time", "month"),
    )
}
DEFAULT_PERIOD = "30d"


MAX_DAYS = 3660  # a custom range of at most ten years
COMPARISONS = {"previous": "the previous period", "year": "the same period a year before"}


def period_of(request: Request) -> Period:
    name = request.query_params.get("period", "")
    if name == "custom":
        return _custom(request)
    return PERIODS.get(name, PERIODS[DEFAULT_PERIOD])


def _day(request: Request, field: str) -> date:
    try:
        return date.fromisoformat(request.query_params.get(field, ""))
    except ValueError:
        raise BadRequest(f"{field}: must be a date, YYYY-MM-DD", field=field) from None


def _custom(request: Request) -> Period:
    """?period=custom&from=YYYY-MM-DD&to=YYYY-MM-DD (both days included)."""
    first, last = _day(request, "from"), _day(request, "to")
    if last < first:
        raise BadRequest("to: comes before from", field="to")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise BadRequest(f"to: a range of at most {MAX_DAYS} days", field="to")
    interval = "hour" if days == 1 else "day" if days <= 92 else "month"
    label = f"{first:%d %b %Y}" if days == 1 else f"{first:%d %b %Y} – {last:%d %b %Y}"
    return Period("custom", label, interval, (first.isoformat(), last.isoformat()))


def comparison_of(request: Request) -> str | None:
    """What the page compares with (?compare=previous|year), if anything."""
    chosen = request.query_params.get("compare")
    return chosen if chosen in COMPARISONS else None


def compared_range(first: str | None, last: str | None, how: str) -> list[str] | None:
    """The range to compare [first, last] (local days, as an answer states them) with: as
    many days just before, or the same days a year before; None for all time."""
    if first is None or last is None:
        return None
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if how == "previous":
        days = end - start + timedelta(days=1)
        return [(start - days).isoformat(), (start - timedelta(days=1)).isoformat()]

    def year_before(day: date) -> date:
        try:
            return day.replace(year=day.year - 1)
        except ValueError:  # 29 February
            return day.replace(year=day.year - 1, day=28)

    return [year_before(start).isoformat(), year_before(end).isoformat()]


def change(now: Any, before: Any) -> str:
    """How much `now` moved from `before`, in %; – when there is nothing to compare."""
    if now is None or before is None or not before:
        return "–"
    moved = 100.0 * (float(now) - float(before)) / float(before)
    return f"{'+' if moved > 0 else '−' if moved < 0 else '±'}{abs(moved):.0f}%"


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(HEADERS)
    return response


def pretty(value: Any) -> str:
    """JSON for people: indented, keys in order, times as ISO 8601."""

    def default(v: Any) -> Any:
        if isinstance(v, datetime | date):
            return v.isoformat()
        return str(v)

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, sort_keys=True, default=default, ensure_ascii=False)


def number(value: Any) -> str:
    """12,345 / 1.2k-free: a whole count with separators, a fraction with at most 2 places."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "–"
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)[:19].replace("T", " ")


def percent(value: Any) -> str:
    return "–" if value is None else f"{number(value)}%"


def points(value: Any) -> str:
    """A change in percentage points, signed."""
    if value is None:
        return "–"
    return f"{'+' if value > 0 else '−' if value < 0 else '±'}{number(abs(value))} pts"


def pvalue(value: Any, significant: bool) -> str:
    """p to 3 places (below that, < 0.001), marked when the change is significant."""
    if value is None:
        return "–"
    shown = "< 0.001" if value < 0.001 else f"{value:.3f}"
    return f"{shown} ✱" if significant else shown


templates.env.filters.update(pretty=pretty, number=number, duration=duration, when=when,
                             percent=percent, points=points, pvalue=pvalue)  # fmt: skip
templates.env.globals.update(PERIODS=PERIODS)
