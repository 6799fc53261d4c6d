"""Enrichment: clock skew, user agent, geo from a real .mmdb, visitor hash, UTM and source, no IP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from roost.pipeline.campaign import place, source_of
from roost.pipeline.useragent import parse
from roost.pipeline.visitor import Visitor
from tests.conftest import Env, make_settings, open_env

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
IPAD = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
ANDROID_PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("ua", "browser", "os", "device", "bot"),
    [
        (CHROME, "Chrome", "Windows", "desktop", False),
        (IPAD, "Mobile Safari", "iOS", "tablet", False),
        (ANDROID_PHONE, "Chrome Mobile", "Android", "mobile", False),
        (GOOGLEBOT, "Googlebot", None, "bot", True),
    ],
)
def test_user_agent(ua: str, browser: str, os: str | None, device: str, bot: bool) -> None:
    agent = parse(ua)
    assert (agent.browser, agent.os, agent.device, agent.bot) == (browser, os, device, bot)


def test_place_and_source() -> None:
    p = place("https://shop.example/a/b?utm_source=mail&utm_campaign=x&q=1")
    assert p.host == "shop.example"
    assert p.path == "/a/b"
    assert p.utm == ("mail", None, "x", None, None)
    assert source_of("https://www.google.co.uk/search", "shop.example") == "Google"
    assert source_of("https://t.co/abc", "shop.example") == "Twitter"
    assert source_of("https://news.ycombinator.com/item?id=1", None) == "Hacker News"
    assert source_of("https://blog.friend.example/post", "shop.example") == "blog.friend.example"
    assert source_of("https://shop.example/other", "shop.example") is None


def test_clock_skew_is_corrected_from_sent_at(env: Env) -> None:
    device_clock = datetime.now(UTC) - timedelta(days=200)  # a device 200 days behind
    body = {
        "userId": "u",
        "event": "E",
        "originalTimestamp": device_clock.isoformat(),
        "sentAt": (device_clock + timedelta(seconds=30)).isoformat(),
    }
    assert (
        env.client.post("/v1/track", json=body, headers={"X-Write-Key": env.write_key}).status_code
        == 200
    )
    row = env.sql("select timestamp, received_at from events")[0]
    skew = datetime.fromisoformat(row["received_at"]) - datetime.fromisoformat(row["timestamp"])
    assert skew == timedelta(seconds=30)


def test_visitor_salt_rotates_daily_and_old_salts_are_deleted(env: Env) -> None:
    visitor = Visitor(env.runtime.metadata.salt_for)
    day1 = datetime(2026, 5, 1, 12, tzinfo=UTC)
    first = visitor.salt(day1)
    assert visitor.salt(day1 + timedelta(hours=11)) == first
    second = visitor.salt(day1 + timedelta(days=1))
    assert second != first
    assert env.runtime.metadata.salt_days() == ["2026-05-02"]


def test_visitor_is_stable_within_a_day_and_differs_by_ip(env: Env) -> None:
    def pageview(ip: str) -> None:
        body = {
            "site_id": "default",
            "url": "https://a.example/",
            "user_agent": CHROME,
            "ip_address": ip,
        }
        response = env.client.post(
            "/api/v1/events/pageview", json=body, headers={"X-Write-Key": env.write_key}
        )
        assert response.status_code == 201

    pageview("198.51.100.1")
    pageview("198.51.100.1")
    pageview("198.51.100.2")
    visitors = [r["visitor"] for r in env.sql("select visitor from events order by log_offset")]
    assert visitors[0] == visitors[1] != visitors[2]
    assert all(len(v) == 16 for v in visitors)


@pytest.fixture
def geo_env(tmp_path: Path) -> Iterator[Env]:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"country": {"iso_code": "DE"}})
    path = tmp_path / "countries.mmdb"
    writer.to_db_file(str(path))
    yield from open_env(make_settings(tmp_path, geoip_db=str(path)))


def test_country_from_ip_and_no_ip_stored(geo_env: Env) -> None:
    env = geo_env
    headers = {"X-Write-Key": env.write_key}
    env.client.post(
        "/v1/track",
        json={"userId": "u", "event": "A", "context": {"ip": "81.2.69.142"}},
        headers=headers,
    )
    env.client.post(
        "/v1/track",
        json={"userId": "u", "event": "B", "context": {"ip": "2001:db8::1"}},
        headers=headers,
    )
    env.client.post(
        "/v1/track",
        json={"userId": "u", "event": "C", "context": {"ip": "192.0.2.1"}},
        headers=headers,
    )
    env.client.post(
        "/api/v1/events/pageview",
        json={"site_id": "default", "url": "https://a.example/", "ip_address": "81.2.69.10"},
        headers=headers,
    )
    rows = env.sql("select event, country, context from events order by log_offset")
    assert [(r["event"], r["country"]) for r in rows] == [
        ("A", "GB"),
        ("B", "DE"),
        ("C", None),
        (None, "GB"),
    ]
    assert all("ip" not in r["context"] for r in rows)
    env.runtime.close_sync()
    stored = b"".join(p.read_bytes() for p in Path(env.settings.data).iterdir() if p.is_file())
    for ip in (b"81.2.69.142", b"2001:db8::1", b"192.0.2.1", b"81.2.69.10", b"203.0.113.50"):
        assert ip not in stored, f"{ip!r} was written to disk"


def test_project_that_opted_in_keeps_the_ip(tmp_path: Path) -> None:
    for env in open_env(make_settings(tmp_path)):
        project = env.runtime.metadata.create_project(1, "keeper", store_ip=True)
        _, key = env.runtime.metadata.create_key(project.slug, "write")
        _, read = env.runtime.metadata.create_key(project.slug, "read")
        body = {"userId": "u", "event": "E", "context": {"ip": "198.51.100.9"}}
        assert (
            env.client.post("/v1/track", json=body, headers={"X-Write-Key": key}).status_code == 200
        )
        assert env.sql("select context->>'ip' as ip from events", key=read) == [
            {"ip": "198.51.100.9"}
        ]


def test_server_side_events_are_visitors_not_bots(env: Env) -> None:
    """The web document's server-side examples send no user_agent: the HTTP client's own agent
    (curl, python) is the sender's, not a visitor's, and must not make the event a bot."""
    key = {"Authorization": f"Bearer {env.write_key}"}
    for client_agent in ("python-httpx/0.27.0", "curl/8.5.0", "python-requests/2.32.3"):
        sent = env.client.post(
            "/api/v1/events/pageview",
            json={"site_id": "default", "url": "https://example.com/pricing"},
            headers={**key, "User-Agent": client_agent},
        )
        assert sent.status_code in (200, 201), sent.text
    free = env.client.post(
        "/post", json={"event_name": "report_generated"},
        headers={**key, "User-Agent": "python-httpx/0.27.0"},
    )  # fmt: skip
    assert free.status_code == 200, free.text
    env.client.post(
        "/api/v1/events/pageview",
        json={"site_id": "default", "url": "https://example.com/", "user_agent": GOOGLEBOT},
        headers={**key, "User-Agent": "python-httpx/0.27.0"},
    )  # a crawler named by the body is still one
    rows = env.sql("select dialect, device, bot from events order by dialect, device")
    assert [(r["dialect"], r["device"], r["bot"]) for r in rows] == [
        ("freeform", "server", False),
        ("web", "bot", True),
        *[("web", "server", False)] * 3,
    ]
    answer = env.client.post(
        "/api/v1/query",
        json={"metrics": ["pageviews", "visitors"], "date_range": "all"},
        headers={"Authorization": f"Bearer {env.read_key}"},
    )
    assert answer.json()["results"][0]["metrics"] == [3, 1]  # one server address, three views
