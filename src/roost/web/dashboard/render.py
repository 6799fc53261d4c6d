"""Templates, the period picker and the headers every dashboard page carries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

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


def period_of(request: Request) -> Period:
    return PERIODS.get(request.query_params.get("period", ""), PERIODS[DEFAULT_PERIOD])


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


templates.env.filters.update(pretty=pretty, number=number, duration=duration, when=when)
templates.env.globals.update(PERIODS=PERIODS)
