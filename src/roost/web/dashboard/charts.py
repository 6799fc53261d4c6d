"""Charts drawn on the server as SVG and HTML: no script library, nothing fetched elsewhere,
readable with scripts off. Time series (with empty buckets filled), bars, funnels and the
retention grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 12, 28


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value` (an axis' top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _short(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def buckets(first: date, last: date, interval: str) -> list[str]:
    """Every bucket label from `first` to `last`, as the Stats API labels them."""
    labels: list[str] = []
    if interval == "hour":
        moment = datetime(first.year, first.month, first.day)
        end = datetime(last.year, last.month, last.day) + timedelta(days=1)
        while moment < end and len(labels) < 24 * 400:
            labels.append(moment.strftime("%Y-%m-%dT%H:00:00"))
            moment += timedelta(hours=1)
    elif interval == "month":
        y, m = first.year, first.month
        while (y, m) <= (last.year, last.month):
            labels.append(f"{y:04d}-{m:02d}-01")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    elif interval == "week":
        day = first - timedelta(days=first.weekday())
        while day <= last:
            labels.append(day.isoformat())
            day += timedelta(days=7)
    else:
        day = first
        while day <= last:
            labels.append(day.isoformat())
            day += timedelta(days=1)
    return labels


def filled(
    results: Sequence[dict[str, Any]], first: date | None, last: date | None, interval: str
) -> list[tuple[str, list[float]]]:
    """A Stats API time series (time as its first dimension) with empty buckets as zeros."""
    found = {str(r["dimensions"][0]): [float(v or 0) for v in r["metrics"]] for r in results}
    if not found:
        return []
    width = len(next(iter(found.values())))
    if first is None:
        first = date.fromisoformat(min(found)[:10])
    if last is None:
        last = date.fromisoformat(max(found)[:10])
    return [(label, found.get(label, [0.0] * width)) for label in buckets(first, last, interval)]


def current(now: datetime, interval: str) -> str:
    """The label of the bucket the local time `now` falls in."""
    if interval == "hour":
        return now.strftime("%Y-%m-%dT%H:00:00")
    if interval == "month":
        return f"{now:%Y-%m}-01"
    if interval == "week":
        return (now.date() - timedelta(days=now.weekday())).isoformat()
    return now.date().isoformat()


def until_now(
    points: Sequence[tuple[str, list[float]]], now_label: str
) -> tuple[list[tuple[str, list[float]]], bool]:
    """The points up to the bucket under way (the hours still to come are no zeros), and
    whether the last one is that bucket: not over yet, so drawn as such."""
    labels = [label for label, _ in points]
    if now_label not in labels:
        return list(points), False
    return list(points[: labels.index(now_label) + 1]), True


def _x_label(label: str, interval: str) -> str:
    if interval == "hour":
        return label[11:16]
    if interval == "month":
        return datetime.strptime(label[:7], "%Y-%m").strftime("%b %Y")
    return datetime.strptime(label[:10], "%Y-%m-%d").strftime("%b %d")


def timeseries(
    points: Sequence[tuple[str, list[float]]],
    names: Sequence[str],
    interval: str,
    incomplete: bool = False,
) -> Markup:
    """A line chart of one or two series (the second dashed) over time buckets; with
    `incomplete`, the last bucket is not over yet: its segment dotted, its dots hollow."""
    if not points:
        return Markup('<p class="empty">No events in this period.</p>')
    top = nice_ceiling(max((max(v) for _, v in points), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(points)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg class="chart timeseries" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(" and ".join(names))} over time" data-points="{n}" '
        f'data-max="{top:g}" data-incomplete="{"true" if incomplete else "false"}">'
    ]
    for k in range(5):
        value = top * k / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{_short(value)}</text>'
        )
    step = max(1, math.ceil(n / 7))
    for i in range(0, n, step):
        parts.append(
            f'<text class="axis" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{escape(_x_label(points[i][0], interval))}</text>"
        )
    for s, name in enumerate(names):
        line = " ".join(f"{x(i):.1f},{y(v[s]):.1f}" for i, (_, v) in enumerate(points))
        if s == 0:
            parts.append(
                f'<polygon class="area" points="{LEFT if n > 1 else x(0):.1f},{y(0):.1f} {line} '
                f'{x(n - 1):.1f},{y(0):.1f}"/>'
            )
        if incomplete and n > 1:
            done = " ".join(line.split(" ")[:-1])
            last = " ".join(line.split(" ")[-2:])
            parts.append(f'<polyline class="line series{s}" points="{done}"/>')
            parts.append(f'<polyline class="line series{s} incomplete" points="{last}"/>')
        else:
            parts.append(f'<polyline class="line series{s}" points="{line}"/>')
        if n <= 62:
            for i, (label, v) in enumerate(points):
                hollow = " incomplete" if incomplete and i == n - 1 else ""
                parts.append(
                    f'<circle class="dot series{s}{hollow}" cx="{x(i):.1f}" cy="{y(v[s]):.1f}" r="3">'
                    f"<title>{escape(label[:16].replace('T', ' '))}: {v[s]:,.0f} "
                    f"{escape(name)}</title></circle>"
                )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="legend series{s}">{escape(name)}</span>' for s, name in enumerate(names)
    )
    return Markup(
        f'<figure class="chart-box">{"".join(parts)}<figcaption>{legend}</figcaption></figure>'
    )


def bars(
    rows: Sequence[Sequence[Any]],
    heading: str,
    measure: str,
    link: str | None = None,
    none: str = "(none)",
    csv: str | None = None,
    empty: str = "None in this period.",
) -> Markup:
    """A ranked list with a bar behind each row: (label, value[, second value]) rows; `none`
    labels the row of no value; `csv`: where its rows download; `empty`: what it says
    without rows (why, where Roost knows)."""
    if not rows:
        return Markup(
            f'<div class="bars"><h3>{escape(heading)}</h3><p class="empty">{escape(empty)}</p></div>'
        )
    if csv is not None:
        heading = Markup(
            f'{escape(heading)} <a href="{escape(csv)}" class="csv" download '
            f'title="Download these rows as CSV">CSV</a>'
        )
    top = max(float(r[1] or 0) for r in rows) or 1.0
    out = [
        f'<div class="bars"><h3>{escape(heading)}</h3><div class="bars-head"><span></span>'
        f"<span>{escape(measure)}</span></div><ol>"
    ]
    for row in rows:
        label = none if row[0] in (None, "") else str(row[0])
        share = 100.0 * float(row[1] or 0) / top
        text = escape(label)
        if link is not None and row[0] not in (None, ""):
            href = link + quote(str(row[0]), safe="")  # names with &, # or / stay one value
            text = Markup(f'<a href="{escape(href)}">{text}</a>')
        out.append(
            f'<li><span class="bar" style="width:{share:.1f}%"></span>'
            f'<span class="label">{text}</span>'
            f'<span class="value">{float(row[1] or 0):,.0f}</span></li>'
        )
    out.append("</ol></div>")
    return Markup("".join(out))


def funnel(steps: Sequence[dict[str, Any]], dropped: Sequence[str] = ()) -> Markup:
    """Each step as a bar as long as its share of the first step, with what was lost between
    (`dropped`: where the people lost before each later step are listed)."""
    if not steps:
        return Markup('<p class="empty">No steps.</p>')
    out = ['<ol class="funnel">']
    for step in steps:
        out.append(
            f'<li><div class="funnel-label"><strong>{step["step"]}. '
            f"{escape(str(step['label']))}</strong> <span>{step['people']:,} people · "
            f"{step['conversion']:g}% of the first step"
            + (
                f" · {step['from_previous']:g}% of the previous, "
                + (
                    f'<a href="{escape(dropped[step["step"] - 2])}">{step["dropped"]:,} dropped</a>'
                    if step["dropped"] and len(dropped) >= step["step"] - 1
                    else f"{step['dropped']:,} dropped"
                )
                if step["step"] > 1
                else ""
            )
            + f'</span></div><div class="funnel-bar" style="width:{max(step["conversion"], 0.5):.1f}%">'
            f"</div></li>"
        )
    out.append("</ol>")
    return Markup("".join(out))


def _later(day: date, period: str, n: int) -> date:
    if period == "day":
        return day + timedelta(days=n)
    if period == "week":
        return day + timedelta(weeks=n)
    months = day.year * 12 + day.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


def retention(
    cohorts: Sequence[dict[str, Any]], periods: int, period: str, today: date | None = None
) -> Markup:
    """The cohort grid: a row per cohort, a cell per later period, darker for more retained;
    periods still to come empty, the one under way (holding `today`) marked as not over."""
    if not cohorts:
        return Markup('<p class="empty">No cohorts in this period.</p>')
    head = "".join(f"<th>{period.title()} {i}</th>" for i in range(periods))
    out = [
        f'<table class="retention"><thead><tr><th>Cohort</th><th>People</th>{head}</tr></thead><tbody>'
    ]
    for c in cohorts:
        cells = []
        for i in range(periods):
            if i < len(c["percent"]) and c["percent"][i] is not None:
                pct = float(c["percent"][i])
                start = _later(date.fromisoformat(str(c["cohort"])[:10]), period, i)
                under_way = today is not None and start <= today < _later(start, period, 1)
                mark = ' class="partial"' if under_way else ""
                note = " so far: this period is not over" if under_way else ""
                cells.append(
                    f'<td{mark} style="background:rgba(37,99,235,{0.08 + 0.8 * pct / 100:.2f})" '
                    f'title="{c["retained"][i]:,} people{note}">{pct:.1f}%</td>'
                )
            else:
                cells.append('<td class="future"></td>')
        out.append(
            f"<tr><th>{escape(str(c['cohort']))}</th><td>{c['people']:,}</td>{''.join(cells)}</tr>"
        )
    out.append("</tbody></table>")
    return Markup("".join(out))


def meter(used: int, budget: int | None) -> Markup:
    """Budget use against the 80% (warning) and 100% (limit) marks."""
    if not budget:
        return Markup(f'<p class="meter-none">{used:,} events this month; no budget set.</p>')
    share = 100.0 * used / budget
    state = "over" if share >= 100 else "warn" if share >= 80 else "ok"
    return Markup(
        f'<div class="meter {state}" role="meter" aria-valuenow="{share:.1f}" aria-valuemin="0" '
        f'aria-valuemax="100"><div class="meter-fill" style="width:{min(share, 100):.1f}%"></div>'
        '<span class="mark" style="left:80%" title="80%: warning"></span>'
        '<span class="mark" style="left:99.6%" title="100%: limit"></span></div>'
        f'<p class="meter-text">{used:,} of {budget:,} events this month ({share:.1f}%)'
        + (" — over budget: events are refused" if state == "over" else "")
        + (" — past the 80% warning" if state == "warn" else "")
        + "</p>"
    )
