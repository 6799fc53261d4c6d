"""Realistic, reproducible demo traffic: a website, a game and a SaaS app, over weeks.

`generate(seed, days, scale, until)` yields (dialect, event) pairs in time order per day, the
same for the same arguments (a seeded generator; messageIds derived from it, so sending the
demo twice stores it once). The website has visits of several pages from search, social
and campaigns, sign-ups and purchases (a funnel); the game has sessions with runs that
complete or fail, gold earned and spent, and errors whose signature changes with the build;
the SaaS app has users who identify, belong to companies and come back less each week.
Web events are sent as Segment `page` calls so their historical times are kept.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
]
SOURCES = [
    ("https://www.google.com/", None), ("https://www.google.com/", None),
    ("https://duckduckgo.com/", None), ("https://news.ycombinator.com/", None),
    ("https://twitter.com/", None), (None, None), (None, None),
    (None, "utm_source=newsletter&utm_medium=email&utm_campaign=spring"),
    ("https://www.reddit.com/", None),
]  # fmt: skip
NEXT_PAGE = {
    "/": ["/pricing", "/features", "/blog/launch", "/docs"],
    "/features": ["/pricing", "/docs", "/"],
    "/blog/launch": ["/", "/pricing"],
    "/docs": ["/docs/install", "/pricing"],
    "/docs/install": ["/pricing", "/docs"],
    "/pricing": ["/signup", "/features", "/"],
    "/signup": ["/welcome"],
    "/welcome": ["/docs/install"],
}
ERRORS = {
    "1.0": [
        ("NullReferenceException", "sig-inventory-null"),
        ("IndexOutOfRange", "sig-level-index"),
    ],
    "1.1": [("TimeoutException", "sig-save-timeout")],
}
FEATURES = [
    "Dashboard Viewed",
    "Report Created",
    "Report Shared",
    "Invite Sent",
    "Export Downloaded",
]
PLANS = ["free", "free", "free", "pro", "pro", "enterprise"]

Event = tuple[str, dict[str, Any]]


def _at(day: date, seconds: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Demo:
    def __init__(
        self, seed: int, days: int, scale: float, until: date, now: datetime | None = None
    ) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.scale = scale
        self.until = until
        self.now = now  # nothing is made to happen after it

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _count(self, base: float, day_index: int, day: date) -> int:
        weekend = 0.6 if day.weekday() >= 5 else 1.0
        growth = 1.0 + 0.5 * day_index / max(1, self.days)
        return max(1, int(self.rng.gauss(base, base * 0.1) * weekend * growth * self.scale))

    def by_day(self) -> Iterator[tuple[date, list[Event]]]:
        """Each day's events, in time order."""
        first = self.until - timedelta(days=self.days - 1)
        customers = [f"user-{i}" for i in range(int(200 * self.scale) + 5)]
        joined: dict[str, date] = {}
        for index in range(self.days):
            day = first + timedelta(days=index)
            today: list[tuple[datetime, Event]] = []
            today += self._website(day, index)
            today += self._game(day, index)
            today += self._app(day, index, customers, joined)
            today.sort(key=lambda item: item[0])
            if self.now is not None:
                today = [item for item in today if item[0] <= self.now]
            yield day, [event for _, event in today]

    # The website: visits, a sign-up funnel, purchases

    def _website(self, day: date, index: int) -> list[tuple[datetime, Event]]:
        out: list[tuple[datetime, Event]] = []
        for _ in range(self._count(120, index, day)):
            visitor = self.rng.getrandbits(32)
            ip = f"198.51.{visitor >> 24 & 255}.{visitor & 255}"
            ua = self.rng.choice(UAS)
            anonymous = f"anon-{visitor:08x}"
            referrer, utm = self.rng.choice(SOURCES)
            moment = _at(day, self.rng.uniform(6 * 3600, 23 * 3600))
            path = (
                "/"
                if self.rng.random() < 0.6
                else self.rng.choice(["/pricing", "/blog/launch", "/docs"])
            )
            for step in range(self.rng.choice([1, 1, 2, 2, 3, 4, 6])):
                url = f"https://shop.example{path}" + (f"?{utm}" if utm and step == 0 else "")
                page: dict[str, Any] = {"url": url, "path": path}
                if referrer and step == 0:
                    page["referrer"] = referrer
                out.append((moment, ("segment", {
                    "type": "page", "anonymousId": anonymous, "messageId": self._id(),
                    "timestamp": _iso(moment), "name": path,
                    "context": {"ip": ip, "userAgent": ua, "page": page},
                })))  # fmt: skip
                if path == "/signup" and self.rng.random() < 0.7:
                    user = f"web-{visitor:08x}"
                    out.append(
                        (
                            moment,
                            (
                                "segment",
                                {
                                    "type": "identify",
                                    "anonymousId": anonymous,
                                    "userId": user,
                                    "messageId": self._id(),
                                    "timestamp": _iso(moment),
                                    "traits": {"email": f"{user}@example.com"},
                                    "context": {"ip": ip, "userAgent": ua},
                                },
                            ),
                        )
                    )  # fmt: skip  (links the visitor's pages to the new user)
                    out.append((moment, ("segment", {
                        "type": "track", "anonymousId": anonymous, "userId": user,
                        "event": "Signed Up", "messageId": self._id(), "timestamp": _iso(moment),
                        "properties": {"plan": self.rng.choice(PLANS)},
                        "context": {"ip": ip, "userAgent": ua},
                    })))  # fmt: skip
                    if self.rng.random() < 0.35:
                        paid = moment + timedelta(minutes=self.rng.uniform(2, 30))
                        out.append((paid, ("segment", {
                            "type": "track", "userId": user, "event": "Order Completed",
                            "messageId": self._id(), "timestamp": _iso(paid),
                            "properties": {"revenue": self.rng.choice([19, 49, 99, 249]),
                                           "currency": "EUR"},
                            "context": {"ip": ip, "userAgent": ua},
                        })))  # fmt: skip
                choices = NEXT_PAGE.get(path)
                if not choices:
                    break
                path = self.rng.choice(choices)
                moment += timedelta(seconds=self.rng.uniform(8, 240))
        return out

    # The game: sessions, runs, gold, errors by build

    def _game(self, day: date, index: int) -> list[tuple[datetime, Event]]:
        out: list[tuple[datetime, Event]] = []
        build = "1.0" if index < self.days * 0.6 else "1.1"
        for _ in range(self._count(40, index, day)):
            player = f"{self.rng.getrandbits(128):032x}"
            session = self._id()
            moment = _at(day, self.rng.uniform(0, 24 * 3600 - 3600))

            def emit(
                kind: str, name: str, at: datetime, build: str = build, session: str = session,
                player: str = player, **extra: Any,
            ) -> None:  # fmt: skip
                body = {"build_version": build, "session_id": session, "player_hash": player}
                body.update(ts=_iso(at), type=kind, name=name, event_id=self._id(), **extra)
                out.append((at, ("game", body)))

            emit("session", "Session:Start", moment)
            level = 1
            for _ in range(self.rng.randint(1, 5)):
                moment += timedelta(seconds=self.rng.uniform(20, 60))
                emit("progression", "Start:Run", moment, dim01=f"level-{level}")
                moment += timedelta(seconds=self.rng.uniform(60, 400))
                if self.rng.random() < max(0.2, 0.85 - 0.12 * level):
                    emit(
                        "progression",
                        "Complete:Run",
                        moment,
                        dim01=f"level-{level}",
                        value=self.rng.randint(100, 1000),
                    )
                    emit(
                        "resource",
                        "Source:Gold",
                        moment,
                        value=self.rng.randint(10, 120),
                        dim01="reward",
                    )
                    level += 1
                else:
                    emit("progression", "Fail:Run", moment, dim01=f"level-{level}")
                if self.rng.random() < 0.3:
                    emit(
                        "resource", "Sink:Gold", moment, value=self.rng.randint(5, 80), dim01="shop"
                    )
                if self.rng.random() < (0.06 if build == "1.0" else 0.02):
                    name, signature = self.rng.choice(ERRORS[build])
                    emit("error", name, moment, data={"signature": signature, "level": level})
            if self.rng.random() < 0.9:
                moment += timedelta(seconds=self.rng.uniform(5, 60))
                emit("session", "Session:End", moment)
        return out

    # The SaaS app: identified users, companies, features, fading returns

    def _app(
        self, day: date, index: int, customers: list[str], joined: dict[str, date]
    ) -> list[tuple[datetime, Event]]:
        out: list[tuple[datetime, Event]] = []
        for user in customers:
            start = joined.get(user)
            if start is None:
                if self.rng.random() > 1.5 / self.days:
                    continue
                joined[user] = start = day
                moment = _at(day, self.rng.uniform(8 * 3600, 18 * 3600))
                company = f"company-{int(user.split('-')[1]) % 23}"
                out.append((moment, ("segment", {
                    "type": "identify", "userId": user, "messageId": self._id(), "timestamp": _iso(moment),
                    "traits": {"plan": self.rng.choice(PLANS), "company": company,
                               "email": f"{user}@example.com"},
                })))  # fmt: skip
                out.append((moment, ("segment", {
                    "type": "group", "userId": user, "groupId": company, "messageId": self._id(),
                    "timestamp": _iso(moment), "traits": {"name": company.replace("-", " ").title()},
                })))  # fmt: skip
            weeks = (day - start).days / 7
            if self.rng.random() > 0.8 * (0.7**weeks):
                continue
            moment = _at(day, self.rng.uniform(8 * 3600, 18 * 3600))
            for _ in range(self.rng.randint(1, 4)):
                moment += timedelta(seconds=self.rng.uniform(10, 600))
                out.append((moment, ("segment", {
                    "type": "track", "userId": user, "event": self.rng.choice(FEATURES),
                    "messageId": self._id(), "timestamp": _iso(moment),
                    "context": {"sessionId": f"{user}-{day.isoformat()}"},
                })))  # fmt: skip
        return out


def generate(
    seed: int = 42, days: int = 28, scale: float = 1.0, until: date | None = None
) -> Iterator[tuple[date, list[Event]]]:
    """The demo's events day by day, as (dialect, event) pairs: "segment" or "game"."""
    if until is not None:
        return Demo(seed, days, scale, until).by_day()
    now = datetime.now(UTC)
    return Demo(seed, days, scale, now.date(), now).by_day()
