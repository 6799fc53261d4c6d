"""URL → host, path and UTM tags; referrer → traffic source (Google, Twitter, ...)."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from roost.pipeline.batch import Batch

KNOWN_SOURCES = {
    "google": "Google",
    "bing": "Bing",
    "duckduckgo": "DuckDuckGo",
    "yahoo": "Yahoo!",
    "baidu": "Baidu",
    "yandex": "Yandex",
    "ecosia": "Ecosia",
    "facebook": "Facebook",
    "fb": "Facebook",
    "instagram": "Instagram",
    "t": "Twitter",
    "twitter": "Twitter",
    "x": "Twitter",
    "linkedin": "LinkedIn",
    "lnkd": "LinkedIn",
    "reddit": "Reddit",
    "youtube": "YouTube",
    "github": "GitHub",
    "pinterest": "Pinterest",
    "tiktok": "TikTok",
}
HACKER_NEWS = "news.ycombinator.com"
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class Place(NamedTuple):
    host: str | None
    path: str | None
    utm: tuple[str | None, ...]
    tags: tuple[tuple[str, str], ...] = ()  # the UTM tags present, (field, value)


@lru_cache(maxsize=20000)
def place(url: str) -> Place:
    try:
        parts = urlsplit(url)
    except ValueError:
        return Place(None, None, (None,) * len(UTM))
    query = parse_qs(parts.query) if "utm_" in parts.query else {}
    utm = tuple(query[name][0] if query.get(name) else None for name in UTM)
    tags = tuple((name, value[:500]) for name, value in zip(UTM, utm, strict=True) if value)
    return Place(parts.hostname, parts.path or "/", utm, tags)


_places: dict[str, Place] = {}


def _place(url: str) -> Place:
    """`place` with a plain dict in front: cheaper than lru_cache on the hot path."""
    found = _places.get(url)
    if found is None:
        if len(_places) > 20000:
            _places.clear()
        found = _places[url] = place(url)
    return found


@lru_cache(maxsize=20000)
def source_of(referrer: str, own_host: str | None) -> str | None:
    """A readable name of where a visit came from; None for direct or internal traffic."""
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    if not host or host == own_host:
        return None
    if host == HACKER_NEWS:
        return "Hacker News"
    bare = host.removeprefix("www.").removeprefix("m.")
    labels = bare.split(".")
    for label in labels[:-1] or labels:
        if label in KNOWN_SOURCES:
            return KNOWN_SOURCES[label]
    return bare


class Campaign:
    def __call__(self, batch: Batch) -> None:
        for event in batch.events:
            if event.url:
                p = _place(event.url)
                event.host = event.host or p.host
                event.path = event.path or p.path
                for name, value in p.tags:
                    if getattr(event, name) is None:
                        setattr(event, name, value)
            if event.utm_source:
                event.source = event.utm_source
            elif event.referrer:
                event.source = source_of(event.referrer, event.host)
