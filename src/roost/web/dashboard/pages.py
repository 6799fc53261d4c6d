"""The reading pages: overview, web, game, product, events, profiles and the live stream.

Each page asks the same reports the API answers (web/api/stats.py `answer`), several at once
(DuckDB runs them on separate cursors, in threads), after one wait for the Warehouse to
catch up with what was acknowledged.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.errors import BadRequest, NotFound
from roost.query import builds, funnels
from roost.query import events as event_queries
from roost.query.trace import trace
from roost.storage.metadata.settings import check_view
from roost.storage.warehouse import QueryResult
from roost.web.api.debugger import sse
from roost.web.api.profiles import read_profile
from roost.web.api.stats import answer, builds_compared
from roost.web.dashboard import charts, render
from roost.web.dashboard.auth import SESSION_COOKIE, Context, page, shared_page

EXPLORER_ROWS = 50
TIMELINE_ROWS = 100
LIVE_WINDOW = timedelta(minutes=5)


def _scope(context: Context) -> dict[str, Any]:
    return {
        "date_range": render.period_of(context.request).date_range,
        "timezone": context.timezone,
    }


def _asked(context: Context, body: dict[str, Any]) -> dict[str, Any]:
    """A report's body as the page asks it: the page's date range and zone, and its filters
    ANDed with the body's own."""
    chosen = context.filtering.stats()
    return {**_scope(context), **body, "filters": [*chosen, *body.get("filters", [])]}


async def _reports(context: Context, *asks: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Run reports side by side (`_asked` each)."""
    runtime = context.runtime
    await runtime.caught_up()
    return list(
        await asyncio.gather(
            *(
                answer(runtime, kind, _asked(context, body), context.project.id, wait=False)
                for kind, body in asks
            )
        )
    )


async def _sql(context: Context, sql: str, rows: int) -> QueryResult:
    runtime = context.runtime
    return await asyncio.to_thread(
        runtime.warehouse.report, sql, timeout=runtime.settings.sql_timeout_seconds, max_rows=rows
    )


def _series(found: dict[str, Any], interval: str) -> list[tuple[str, list[float]]]:
    first, last = found["query"]["date_range"]
    return charts.filled(
        found["results"],
        date.fromisoformat(first) if first else None,
        date.fromisoformat(last) if last else None,
        interval,
    )


def _so_far(context: Context, points: list[tuple[str, list[float]]], interval: str) -> Any:
    """The points up to the bucket under way in the project's zone, and whether the last one
    is it (charts.until_now)."""
    now = datetime.now(ZoneInfo(context.timezone)).replace(tzinfo=None)
    return charts.until_now(points, charts.current(now, interval))


def _rows(found: dict[str, Any]) -> list[list[Any]]:
    return [[*r["dimensions"], *r["metrics"]] for r in found["results"]]


def _totals(found: dict[str, Any], names: list[str]) -> dict[str, Any]:
    metrics = found["results"][0]["metrics"] if found["results"] else [None] * len(names)
    return dict(zip(names, metrics, strict=True))


async def _compared(
    context: Context,
    totals: dict[str, Any],
    names: list[str],
    series: list[tuple[str, list[float]]],
    series_metric: str,
) -> dict[str, Any]:
    """With ?compare=previous|year: the totals and the first series over the range compared
    with — each total's change, and the series with the earlier one's values as one more
    (dashed) line, bucket by bucket."""
    how = render.comparison_of(context.request)
    first, last = totals["query"]["date_range"]
    earlier = render.compared_range(first, last, how) if how else None
    if not how or not earlier:
        return {
            "compare_offered": True,
            "changes": None,
            "compared_series": series,
            "compared_name": None,
        }
    interval = render.period_of(context.request).interval
    before, before_series = await _reports(
        context,
        ("query", {"metrics": names, "date_range": earlier}),
        ("query", {"metrics": [series_metric], "interval": interval, "date_range": earlier}),
    )
    now_values, before_values = _totals(totals, names), _totals(before, names)
    changes = {m: render.change(now_values[m], before_values[m]) for m in names}
    back = [v[0] for _, v in _series(before_series, interval)]
    back += [0.0] * (len(series) - len(back))
    return {
        "compare_offered": True,
        "changes": changes,
        "compared_series": [(label, [*v, back[i]]) for i, (label, v) in enumerate(series)],
        "compared_name": f"{series_metric}, {render.COMPARISONS[how]}",
    }


async def _live(context: Context) -> dict[str, int]:
    await context.runtime.caught_up()
    now = datetime.now(UTC).replace(tzinfo=None)
    flavor = context.runtime.warehouse.flavor
    sql = event_queries.recent(now - LIVE_WINDOW, now, context.project.id, flavor)
    result = await _sql(context, sql, 1)
    events, people = result.rows[0] if result.rows else (0, 0)
    return {"events": int(events or 0), "people": int(people or 0)}


@page()
async def overview(context: Context) -> Response:
    period = render.period_of(context.request)
    totals_names = ["events", "users", "visitors", "sessions"]
    totals, series, top, kinds = await _reports(
        context,
        ("query", {"metrics": totals_names}),
        ("query", {"metrics": ["events", "users"], "interval": period.interval}),
        PANELS["top-events"],
        PANELS["types"],
    )
    drawn, incomplete = _so_far(context, _series(series, period.interval), period.interval)
    return render.page(
        context.request,
        "overview.html",
        context.values(
            first_steps=await _first_steps(context, _totals(totals, totals_names)["events"]),
            totals=_totals(totals, totals_names),
            series=drawn,
            incomplete=incomplete,
            **await _compared(context, totals, totals_names, drawn, "events"),
            top=_rows(top),
            kinds=_rows(kinds),
            live=await _live(context),
            breakdown=await _breakdown(context),
        ),
    )


async def _breakdown(context: Context) -> dict[str, Any]:
    """?breakdown_event=Signup&breakdown_property=plan: that event's counts by a property's
    values (any event, any top-level property), each value a filter."""
    params = context.request.query_params
    event = params.get("breakdown_event", "").strip()[:200]
    prop = params.get("breakdown_property", "").strip()[:200]
    chosen = {"event": event, "property": prop, "rows": None}
    if not event or not prop:
        return chosen
    body = {"metrics": ["events", "users"], "dimensions": [f"props:{prop}"], "limit": 20,
            "filters": [["is", "event", [event]]]}  # fmt: skip
    (found,) = await _reports(context, ("query", body))
    return {**chosen, "rows": _rows(found), "dimension": f"props:{prop}"}


async def _first_steps(context: Context, in_period: Any) -> dict[str, str] | None:
    """For a project that has never had an event: how to send the first one (this server's
    address and the project's slug filled in); None once it has."""
    if in_period or context.shared:
        return None
    ever = await asyncio.to_thread(
        context.runtime.warehouse.count_since, [context.project.id], datetime(1970, 1, 1)
    )
    if ever:
        return None
    base = str(context.request.base_url).rstrip("/")
    slug = context.project.slug
    return {
        "tag": f'<script defer data-site="{slug}" data-key="WRITE_KEY" src="{base}/js/roost.js">'
        "</script>",
        "curl": f"curl -u WRITE_KEY: -H 'Content-Type: application/json' "
        f"""-d '{{"userId": "user-1", "event": "Hello"}}' {base}/v1/track""",
        "python": f'from roost.sdk import Client\n\nroost = Client("WRITE_KEY", "{base}")\n'
        'roost.track("Hello", user_id="user-1")\nroost.flush()',
    }


@page()
async def live_counter(context: Context) -> Response:
    """The overview's live counter, polled by static/live-counter.js."""
    return JSONResponse(await _live(context), headers={"Cache-Control": "no-store"})


WEB_TOTALS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]
_PAGES_ONLY = [["is", "type", ["page"]]]


def _top(dimension: str) -> tuple[str, dict[str, Any]]:
    body = {"metrics": ["visitors"], "dimensions": [dimension], "limit": 10}
    return ("query", {**body, "filters": _PAGES_ONLY})


def _entered(dimension: str) -> tuple[str, dict[str, Any]]:
    """Of the visits with a pageview: those whose page is set, which every text "contains" —
    not a regular expression run on each visit (`matches "."`: ~33 of 37 ms at 10 M events)."""
    body = {"metrics": ["visits"], "dimensions": [dimension], "limit": 10}
    return ("query", {**body, "filters": [["contains", dimension, [""]]]})


# The ranked panels of the pages, by the name their CSV is downloaded under (/csv/<name>)
PANELS: dict[str, tuple[str, dict[str, Any]]] = {
    "top-events": ("query", {"metrics": ["events", "users"], "dimensions": ["event"], "limit": 10}),
    "types": ("query", {"metrics": ["events"], "dimensions": ["type"], "limit": 10}),
    "pages": ("query", {"metrics": ["pageviews", "visitors"], "dimensions": ["page"],
                        "limit": 10, "filters": _PAGES_ONLY}),
    # where each visit came from, and where it began and ended: once per visit
    "sources": ("query", {"metrics": ["visitors"], "dimensions": ["visit:source"], "limit": 10}),
    "entry-pages": _entered("entry_page"),
    "exit-pages": _entered("exit_page"),
    "countries": _top("country"),
    "devices": _top("device"),
    "browsers": _top("browser"),
    "systems": _top("os"),
    # what the tracker records with data-outbound / data-downloads (docs/clients.md)
    "outbound-links": ("query", {"metrics": ["visitors", "events"], "dimensions": ["props:url"],
                                 "filters": [["is", "event", ["Outbound Link: Click"]]],
                                 "limit": 10}),
    "file-downloads": ("query", {"metrics": ["visitors", "events"], "dimensions": ["props:url"],
                                 "filters": [["is", "event", ["File Download"]]], "limit": 10}),
}  # fmt: skip
WEB_PANELS = ["pages", "sources", "entry-pages", "exit-pages", "countries", "devices",
              "browsers", "systems", "outbound-links", "file-downloads"]  # fmt: skip


@page()
async def panel_csv(context: Context) -> Response:
    """A panel's rows as CSV: the same report the page asks (its period and filters), so the
    same rows the panel shows."""
    name = context.request.path_params["panel"]
    if name not in PANELS:
        raise NotFound(f"No panel {name!r} (known: {', '.join(PANELS)})")
    (found,) = await _reports(context, PANELS[name])
    query = found["query"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*query["dimensions"], *query["metrics"]])
    for row in found["results"]:
        writer.writerow(["" if v is None else v for v in [*row["dimensions"], *row["metrics"]]])
    first, last = query["date_range"]
    stem = f"{context.project.slug}-{name}-{first or 'start'}-{last or 'now'}"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**render.HEADERS, "Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )


@page()
async def web(context: Context) -> Response:
    period = render.period_of(context.request)
    found = await _reports(
        context,
        ("query", {"metrics": WEB_TOTALS}),
        ("query", {"metrics": ["visitors", "pageviews"], "interval": period.interval}),
        *(PANELS[name] for name in WEB_PANELS),
    )
    totals, series = found[:2]
    panels = {name: _rows(f) for name, f in zip(WEB_PANELS, found[2:], strict=True)}
    geoip = bool(context.runtime.settings.geoip_db)
    if not geoip and all(row[0] is None for row in panels["countries"]):
        panels["countries"] = []  # a lone "(none)" says nothing: the panel says why instead
    drawn, incomplete = _so_far(context, _series(series, period.interval), period.interval)
    goals = await _goals(context, _totals(totals, WEB_TOTALS)["visitors"])
    return render.page(
        context.request,
        "web.html",
        context.values(
            totals=_totals(totals, WEB_TOTALS),
            series=drawn,
            incomplete=incomplete,
            **await _compared(context, totals, WEB_TOTALS, drawn, "visitors"),
            panels=panels,
            no_countries=None
            if geoip
            else "Countries come from a GeoIP database: set geoip_db to a MaxMind-format "
            ".mmdb file (docs/configuration.md).",
            **goals,
        ),
    )


GOALS_SHOWN = 10  # a panel's worth: each is a report of its own
ATTRIBUTIONS = [("visit:source", "source"), ("entry_page", "entry page"),
                ("visit:utm_campaign", "UTM campaign")]  # fmt: skip


def _rate(part: Any, whole: Any) -> float | None:
    return round(100.0 * float(part) / float(whole), 2) if part and whole else None


async def _goals(context: Context, visitors: Any) -> dict[str, Any]:
    """The project's goals: each one's converted visitors, conversions and rate; for the
    goal chosen (?goal=name), its conversions attributed to the visit they happened in — by
    the visit's source, entry page and campaign, each with its rate."""
    defined = await asyncio.to_thread(context.runtime.project_settings.goals, context.project.id)
    shown = defined[:GOALS_SHOWN]
    if not shown:
        return {"goals": [], "goal": None, "attributed": []}
    counted = await _reports(
        context,
        *(("query", {"metrics": ["visitors", "events"], "filters": g.filters()}) for g in shown),
    )
    rows = []
    for goal, found in zip(shown, counted, strict=True):
        converted, events = found["results"][0]["metrics"] if found["results"] else (0, 0)
        rows.append({"name": goal.name, "visitors": converted, "events": events,
                     "rate": _rate(converted, visitors)})  # fmt: skip
    chosen = next((g for g in shown if g.name == context.request.query_params.get("goal")), None)
    attributed = []
    if chosen is not None:
        asks = []
        for dimension, _ in ATTRIBUTIONS:
            by = {"metrics": ["visitors"], "dimensions": [dimension], "limit": 100}
            asks += [("query", {**by, "filters": chosen.filters()}), ("query", by)]
        answers = await _reports(context, *asks)
        for k, (_, label) in enumerate(ATTRIBUTIONS):
            everyone = {
                tuple(r["dimensions"]): r["metrics"][0] for r in answers[2 * k + 1]["results"]
            }
            attributed.append({
                "label": label,
                "rows": [
                    [r["dimensions"][0], r["metrics"][0],
                     _rate(r["metrics"][0], everyone.get(tuple(r["dimensions"])))]
                    for r in answers[2 * k]["results"][:10]
                ],
            })  # fmt: skip
    return {"goals": rows, "goal": chosen.name if chosen else None, "attributed": attributed}


@page()
async def game(context: Context) -> Response:
    period = render.period_of(context.request)
    by_time = f"time:{period.interval}"
    totals, per_time, builds, runs, resources, errors, players, per_time_players = await _reports(
        context,
        ("sessions", {}),
        ("sessions", {"by": [by_time]}),
        ("sessions", {"by": ["build"], "limit": 20}),
        ("runs", {"limit": 20}),
        ("resources", {"limit": 20}),
        ("errors", {"limit": 20}),
        ("players", {}),
        ("players", {"by": [by_time]}),
    )
    first, last = totals["query"]["date_range"]
    sessions_then = {r["by"][0]: r["sessions"] for r in per_time["results"]}
    series = charts.filled(
        [
            {
                "dimensions": r["by"],
                "metrics": [
                    sessions_then.get(r["by"][0], 0),
                    r["players"],
                    r["new_players"],
                    r.get("monthly_players", 0),  # by day only: the players of its 30 days
                ],
            }
            for r in per_time_players["results"]
        ],
        date.fromisoformat(first) if first else None,
        date.fromisoformat(last) if last else None,
        period.interval,
    )
    drawn, incomplete = _so_far(context, series, period.interval)
    summary = dict(totals["results"][0]) if totals["results"] else {}
    people = players["results"][0]["players"] if players["results"] else 0
    summary["players"] = people
    summary["new_players"] = players["results"][0]["new_players"] if players["results"] else 0
    summary["sessions_per_player"] = (
        round(summary["sessions"] / people, 2) if people and summary.get("sessions") else None
    )
    sticky: list[tuple[str, list[float]]] = []
    if period.interval == "day" and drawn:  # DAU / MAU per day, and over the period
        sticky = [(t, [round(100.0 * v[1] / v[3], 1) if v[3] else 0.0]) for t, v in drawn]
        monthly = sum(v[3] for _, v in drawn)
        if monthly:
            summary["stickiness"] = round(100.0 * sum(v[1] for _, v in drawn) / monthly, 1)
    return render.page(
        context.request,
        "game.html",
        context.values(
            totals=summary,
            series=[(t, v[:3]) for t, v in drawn],
            sticky=sticky,
            incomplete=incomplete,
            builds=builds["results"],
            runs=runs["results"],
            resources=resources["results"],
            errors=errors["results"],
            compared_builds=await _builds_compared(
                context, [b["by"][0] for b in builds["results"]]
            ),
        ),
    )


async def _builds_compared(
    context: Context, known: list[Any], funnel: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """?build_a=…&build_b=…: the two builds compared as the API compares them
    (query/builds.py): sessions, runs and the funnel's steps with their tests, error
    signatures new and resolved."""
    params = context.request.query_params
    a, b = params.get("build_a"), params.get("build_b")
    if not a or not b or a == b or a not in known or b not in known:
        return None
    body = {"builds": [a, b], **_asked(context, {}), **({"funnel": funnel} if funnel else {})}
    # the product page shows the funnel only: the other reports are not asked for it
    return await builds_compared(context.runtime, body, context.project.id,
                                 reports=() if funnel else builds.REPORTS)  # fmt: skip


DROPPED_SHOWN = 100
VIEW_INPUTS = ("window", "mode", "start", "return", "retention_period")


def _view_href(context: Context, view: dict[str, Any]) -> str:
    """The product page with a saved view's inputs (the period and filters kept)."""
    items = [(k, v) for k, v in context.filtering.hidden(*VIEW_INPUTS, "step", "dropped")]
    items += [("step", s) for s in view.get("steps", [])]
    items += [(k, view[k]) for k in VIEW_INPUTS if view.get(k)]
    return f"{context.base}/product?{urlencode(items)}"


@page(configure=True)
async def save_view(context: Context) -> Response:
    """Keep the product page's inputs under a name (owners and members)."""
    assert context.form is not None
    form = context.form
    raw: dict[str, Any] = {k: str(form.get(k, "")) for k in ("name", *VIEW_INPUTS)}
    raw["steps"] = [str(s) for s in form.getlist("step")]
    await asyncio.to_thread(context.runtime.project_settings.save_view, context.project.id, raw)
    return RedirectResponse(_view_href(context, check_view(raw)), 303)


@page(configure=True)
async def delete_view(context: Context) -> Response:
    assert context.form is not None
    name = str(context.form.get("name", ""))
    if not await asyncio.to_thread(
        context.runtime.project_settings.delete_view, context.project.id, name
    ):
        raise NotFound(f"No saved view {name!r}.")
    return RedirectResponse(f"{context.base}/product", 303)


async def _dropped(
    context: Context, funnel_body: dict[str, Any], typed: list[str]
) -> dict[str, Any] | None:
    """?dropped=k: the people who reached step k + 1 of the funnel but not the next (the
    first DROPPED_SHOWN, each linking to their profile)."""
    raw = context.request.query_params.get("dropped", "")
    if context.shared or not raw.isdigit() or int(raw) >= len(typed) - 1:
        return None
    k = int(raw)
    parsed = funnels.parse(_asked(context, funnel_body), datetime.now(UTC))
    sql = await asyncio.to_thread(funnels.build, parsed, context.project.id,
                                  context.runtime.warehouse.flavor, k)  # fmt: skip
    found = await _sql(context, sql, DROPPED_SHOWN)
    return {"after": typed[k], "before": typed[k + 1], "people": [r[0] for r in found.rows],
            "more": found.truncated}  # fmt: skip


def _step(raw: str) -> Any:
    """A funnel step typed in the form: an event name, or `/path` for a pageview of it."""
    raw = raw.strip()
    return ["is", "page", [raw]] if raw.startswith("/") else raw


@page()
async def product(context: Context) -> Response:
    params = context.request.query_params
    typed = [s for s in params.getlist("step") if s.strip()][:8]
    window = params.get("window", "1d").strip() or "1d"
    mode = params.get("mode", "loose")
    period_name = params.get("retention_period", "week")
    if period_name not in ("day", "week", "month"):
        period_name = "week"
    start_event = params.get("start", "").strip()
    return_event = params.get("return", "").strip()
    retention_body: dict[str, Any] = {"period": period_name, "periods": 8}
    if start_event:
        retention_body["start"] = start_event
    if return_event:
        retention_body["return"] = return_event
    asks: list[tuple[str, dict[str, Any]]] = [("retention", retention_body)]
    funnel_body = {"steps": [_step(s) for s in typed], "window": window, "mode": mode}
    if len(typed) >= 2:
        asks.append(("funnel", funnel_body))
    problem = None
    try:
        found = await _reports(context, *asks)
    except BadRequest as error:
        problem = error.message
        found = await _reports(context, ("retention", {"period": "week", "periods": 8}))
    events, builds = await _reports(
        context,
        ("query", {"metrics": ["events"], "dimensions": ["event"], "limit": 200}),
        ("query", {"metrics": ["events"], "dimensions": ["build"], "limit": 100}),
    )
    known = [r["dimensions"][0] for r in builds["results"] if r["dimensions"][0]]
    funnel_shown = len(found) > 1
    return render.page(
        context.request,
        "product.html",
        context.values(
            builds=known if funnel_shown else [],
            compared_builds=await _builds_compared(context, known, funnel_body)
            if funnel_shown
            else None,
            cohorts=found[0]["cohorts"],
            today=datetime.now(ZoneInfo(context.timezone)).date(),
            retention_period=period_name,
            funnel=[{**step, "label": typed[k]} for k, step in enumerate(found[1]["steps"])]
            if len(found) > 1
            else None,
            to_convert=found[1]["avg_seconds_to_convert"] if len(found) > 1 else None,
            dropped_links=[]
            if context.shared  # who dropped is personal data: not for a shared link
            else [context.filtering.setting("dropped", str(k)) for k in range(len(typed) - 1)],
            dropped=await _dropped(context, funnel_body, typed) if len(found) > 1 else None,
            steps=typed or ["", "", ""],
            window=window,
            mode=mode,
            start=start_event,
            returned=return_event,
            problem=problem,
            event_names=[r["dimensions"][0] for r in events["results"] if r["dimensions"][0]],
            views=[
                (v["name"], _view_href(context, v))
                for v in await asyncio.to_thread(
                    context.runtime.project_settings.views, context.project.id
                )
            ],
        ),
    )


@page()
async def explorer(context: Context) -> Response:
    params = context.request.query_params
    before = None
    if params.get("before"):
        try:
            before = datetime.fromisoformat(params["before"]).replace(tzinfo=None)
        except ValueError:
            raise BadRequest("before: must be an ISO 8601 time", field="before") from None
    search = event_queries.Search(
        event=params.get("event", "").strip(),
        type=params.get("type", "").strip(),
        user=params.get("user", "").strip(),
        before=before,
        destination=params.get("destination", "").strip(),
        status=params.get("status", "").strip(),
    )
    await context.runtime.caught_up()
    flavor = context.runtime.warehouse.flavor
    also = await asyncio.to_thread(_at_destination, context, search)
    sql = event_queries.listing(search, context.project.id, flavor, EXPLORER_ROWS, also)
    result = await _sql(context, sql, EXPLORER_ROWS)
    rows = event_queries.as_dicts(result.columns, result.rows)
    more = None
    if len(rows) == EXPLORER_ROWS:
        last = rows[-1]["timestamp"]
        more = last.isoformat() if isinstance(last, datetime) else str(last)
    return render.page(
        context.request,
        "events.html",
        context.values(
            rows=rows, search=search, more=more, types=event_queries.EVENT_TYPES_SHOWN,
            destinations=[d.name for d in context.runtime.destinations.configured(context.project.id)],
            statuses=event_queries.DESTINATION_STATUSES,
        ),
    )  # fmt: skip


def _at_destination(context: Context, search: event_queries.Search) -> str | None:
    """The explorer's destination filter as SQL (None without one)."""
    if not search.destination:
        return None
    store = context.runtime.destinations
    found = next((d for d in store.configured(context.project.id)
                  if d.name == search.destination), None)  # fmt: skip
    if found is None:
        raise BadRequest(f"destination: no destination {search.destination[:100]!r}",
                         field="destination")  # fmt: skip
    status = search.status or "waiting"
    if status not in event_queries.DESTINATION_STATUSES:
        raise BadRequest(f"status: must be one of {', '.join(event_queries.DESTINATION_STATUSES)}",
                         field="status")  # fmt: skip
    state = store.state(found.id)
    letters = [(x.first_offset, x.last_offset)
               for x in store.letters(found.id, status="dead", limit=1000)]  # fmt: skip
    return event_queries.at_destination(
        status,
        context.runtime.warehouse.flavor,
        state.log_offset if state else 0,
        letters,
        found.types,
        found.events,
    )


@page()
async def event_detail(context: Context) -> Response:
    message_id = context.request.path_params["message_id"]
    flavor = context.runtime.warehouse.flavor
    result = await _sql(context, event_queries.one(message_id, context.project.id, flavor), 1)
    if not result.rows:
        raise NotFound(f"No event with messageId {message_id!r} in this project.")
    event = event_queries.as_dicts(result.columns, result.rows)[0]
    path = await asyncio.to_thread(trace, context.runtime, context.project.id, message_id)
    return render.page(
        context.request,
        "event.html",
        context.values(event=event, message_id=message_id, trace=path),
    )


@page()
async def profiles(context: Context) -> Response:
    wanted = context.request.query_params.get("user", "").strip()
    if wanted:
        return Response(
            status_code=303,
            headers={"Location": f"/p/{context.project.slug}/profiles/{quote(wanted, safe='')}"},
        )
    (people,) = await _reports(
        context,
        (
            "query",
            {
                "metrics": ["events"],
                "dimensions": ["user"],
                "limit": 50,
                "filters": [["is_not", "user", [""]]],
            },
        ),
    )
    return render.page(context.request, "profiles.html", context.values(people=_rows(people)))


@page()
async def profile(context: Context) -> Response:
    wanted = context.request.path_params["user_id"]
    runtime = context.runtime
    await runtime.caught_up()
    found = await asyncio.to_thread(read_profile, runtime, context.project.id, wanted)
    ids = [found["user_id"], *found["linked_ids"]]
    sql = event_queries.timeline(ids, context.project.id, runtime.warehouse.flavor, TIMELINE_ROWS)
    result = await _sql(context, sql, TIMELINE_ROWS)
    return render.page(
        context.request,
        "profile.html",
        context.values(profile=found, timeline=event_queries.as_dicts(result.columns, result.rows)),
    )


@page()
async def live(context: Context) -> Response:
    return render.page(context.request, "live.html", context.values())


@page()
async def live_stream(context: Context) -> Response:
    token = context.request.cookies.get(SESSION_COOKIE, "")
    accounts = context.runtime.accounts

    async def allowed() -> bool:  # a login that ended (logout, expiry, removal) stops reading
        return await asyncio.to_thread(accounts.session, token) is not None

    return sse(
        context.request, context.runtime, context.project.id, f"user:{context.user.id}", allowed
    )


def routes() -> list[BaseRoute]:
    base = "/p/{slug}"
    return [
        Route(f"{base}/", overview, methods=["GET"]),
        Route(f"{base}/live-counter", live_counter, methods=["GET"]),
        Route(f"{base}/web", web, methods=["GET"]),
        Route(f"{base}/csv/{{panel}}", panel_csv, methods=["GET"]),
        Route(f"{base}/game", game, methods=["GET"]),
        Route(f"{base}/product", product, methods=["GET"]),
        Route(f"{base}/product/views", save_view, methods=["POST"]),
        Route(f"{base}/product/views/delete", delete_view, methods=["POST"]),
        Route(f"{base}/events", explorer, methods=["GET"]),
        Route(f"{base}/events/{{message_id:path}}", event_detail, methods=["GET"]),
        Route(f"{base}/profiles", profiles, methods=["GET"]),
        Route(f"{base}/profiles/{{user_id:path}}", profile, methods=["GET"]),
        Route(f"{base}/live", live, methods=["GET"]),
        Route(f"{base}/live/stream", live_stream, methods=["GET"]),
        # a shared link's read-only view: the report pages, their CSV, nothing else
        *(
            Route(f"/s/{{token}}{path}", shared_page(handler.__wrapped__), methods=["GET"])
            for path, handler in SHARED
        ),
    ]


SHARED = [("/", overview), ("/live-counter", live_counter), ("/web", web), ("/game", game),
          ("/product", product), ("/csv/{panel}", panel_csv)]  # fmt: skip
