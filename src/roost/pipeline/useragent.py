"""User agent → browser, OS, device type (desktop, mobile, tablet, bot), with ua-parser.

Parsing a user agent costs far more than the rest of the pipeline, and a site sees few
distinct ones, so results are cached.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import ua_parser

from roost.pipeline.batch import Batch

BOT_WORDS = (
    "bot",
    "crawler",
    "spider",
    "slurp",
    "headless",
    "lighthouse",
    "python-requests",
    "python-httpx",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
)
TABLET_WORDS = ("ipad", "tablet", "kindle", "silk/", "playbook")
MOBILE_OS = ("iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS")


class Agent(NamedTuple):
    browser: str | None
    os: str | None
    device: str
    bot: bool


@lru_cache(maxsize=20000)
def parse(user_agent: str) -> Agent:
    result = ua_parser.parse(user_agent[:1000])
    browser = result.user_agent.family if result.user_agent else None
    os = result.os.family if result.os else None
    device_family = result.device.family if result.device else ""
    lowered = user_agent.lower()
    bot = device_family == "Spider" or any(w in lowered for w in BOT_WORDS)
    if bot:
        device = "bot"
    elif any(w in lowered for w in TABLET_WORDS) or (os == "Android" and "mobile" not in lowered):
        device = "tablet"
    elif os in MOBILE_OS or "mobile" in lowered:
        device = "mobile"
    else:
        device = "desktop"
    return Agent(
        browser if browser and browser != "Other" else None,
        os if os and os != "Other" else None,
        device,
        bot,
    )


class UserAgent:
    def __call__(self, batch: Batch) -> None:
        last: str | None = None
        agent: Agent | None = None
        for event in batch.events:
            ua = event.context.get("userAgent")
            if ua.__class__ is not str or not ua:
                continue
            if ua != last:  # a batch usually comes from one device: parse once
                agent, last = parse(ua), ua
            assert agent is not None
            event.browser, event.os, event.device, event.bot = agent
