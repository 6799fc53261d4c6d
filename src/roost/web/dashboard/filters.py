"""The filters of a dashboard page, kept in its URL so a filtered view can be bookmarked and
shared: `?f=visit:source==Google&f=country!=DE` (`==` is, `!=` is not; a dimension name
never holds `=`, so the first `=` ends it and the value may hold anything). Every report of
the page gets them, ANDed with its own; a row of a panel links to the page with one more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from roost.errors import BadRequest
from roost.query import stats

PARAMETER = "f"
PERIOD_INPUTS = ("period", "from", "to")  # what a choice of period sets
MAX_FILTERS = 10
LABELS = {
    "event": "Event", "type": "Type", "page": "Page", "entry_page": "Entry page",
    "exit_page": "Exit page", "visit:source": "Source", "source": "Referrer source",
    "visit:utm_source": "UTM source", "visit:utm_medium": "UTM medium",
    "visit:utm_campaign": "UTM campaign", "country": "Country", "device": "Device",
    "browser": "Browser", "os": "OS", "build": "Build", "hostname": "Host",
    "props:url": "URL", "props:signature": "Error signature", "run": "Run",
}  # fmt: skip


@dataclass(frozen=True)
class Filter:
    dimension: str
    negated: bool
    value: str

    def text(self) -> str:
        return f"{self.dimension}{'!=' if self.negated else '=='}{self.value}"

    def stats(self) -> list[Any]:
        return ["is_not" if self.negated else "is", self.dimension, [self.value]]


@dataclass(frozen=True)
class Chip:
    label: str
    operator: str  # "is" or "is not"
    value: str
    remove: str  # the page's URL without it
    negate: str  # with it turned around


def _parsed(raw: str, where: str) -> Filter:
    dimension, equals, value = raw.partition("=")
    if not equals or not dimension:
        raise BadRequest(f"{where}: must be dimension==value or dimension!=value", field=where)
    negated = dimension.endswith("!")
    if negated:
        dimension = dimension[:-1]
    elif not value.startswith("="):
        raise BadRequest(f"{where}: must be dimension==value or dimension!=value", field=where)
    found = Filter(dimension, negated, value if negated else value[1:])
    stats.parse_filter(found.stats(), where, None)  # a known dimension: else a 400 naming it
    return found


class PageFilters:
    """The filters a page was asked with, and the links that change them."""

    def __init__(self, request: Request) -> None:
        raw = request.query_params.getlist(PARAMETER)
        if len(raw) > MAX_FILTERS:
            raise BadRequest(f"{PARAMETER}: at most {MAX_FILTERS} filters", field=PARAMETER)
        self.filters = [_parsed(r, f"{PARAMETER}[{i}]") for i, r in enumerate(raw)]
        self._path = request.url.path
        self._others = [(k, v) for k, v in request.query_params.multi_items() if k != PARAMETER]

    def stats(self) -> list[list[Any]]:
        """As Stats API filters."""
        return [f.stats() for f in self.filters]

    def _href(self, filters: list[Filter], others: list[tuple[str, str]] | None = None) -> str:
        items = [*(self._others if others is None else others)]
        items += [(PARAMETER, f.text()) for f in filters]
        return f"{self._path}?{urlencode(items)}" if items else self._path

    def link(self, dimension: str) -> str:
        """The start of a row's link: the value, URL-quoted, completes it."""
        kept = [f for f in self.filters if f.dimension != dimension]
        href = self._href(kept)
        joiner = "&" if "?" in href else "?"
        return f"{href}{joiner}{PARAMETER}={quote(dimension + '==', safe=':')}"

    def period(self, name: str) -> str:
        """This page, filters and every other input kept, over another period."""
        others = [(k, v) for k, v in self._others if k not in PERIOD_INPUTS]
        return self._href(self.filters, [("period", name), *others])

    def setting(self, name: str, value: str | None) -> str:
        """This page with one input set (or gone, for None), all else kept."""
        others = [(k, v) for k, v in self._others if k != name]
        return self._href(self.filters, others + ([(name, value)] if value is not None else []))

    def carried(self) -> str:
        """The query string another page of the project takes on: the period, comparison
        and filters (not this page's own inputs)."""
        keep = (*PERIOD_INPUTS, "compare")
        items = [(k, v) for k, v in self._others if k in keep]
        items += [(PARAMETER, f.text()) for f in self.filters]
        return f"?{urlencode(items)}" if items else ""

    def csv(self, base: str, panel: str) -> str:
        """Where a panel's rows download as CSV (`base`: the project's pages, /p/<slug> or a
        shared link's), with this page's period and filters."""
        items = [*self._others, *((PARAMETER, f.text()) for f in self.filters)]
        query = f"?{urlencode(items)}" if items else ""
        return f"{base}/csv/{quote(panel, safe='')}{query}"

    def hidden(self, *leaving: str) -> list[tuple[str, str]]:
        """(name, value) of the page's inputs but `leaving` (and the filters), for a form of
        the page to send on."""
        return [(k, v) for k, v in self._others if k not in leaving] + [
            (PARAMETER, f.text()) for f in self.filters
        ]

    def chips(self) -> list[Chip]:
        out = []
        for i, f in enumerate(self.filters):
            rest = self.filters[:i] + self.filters[i + 1 :]
            turned = Filter(f.dimension, not f.negated, f.value)
            out.append(
                Chip(
                    label=LABELS.get(f.dimension, f.dimension),
                    operator="is not" if f.negated else "is",
                    value=f.value,
                    remove=self._href(rest),
                    negate=self._href([*self.filters[:i], turned, *self.filters[i + 1 :]]),
                )
            )
        return out
