"""Rate limits: a token bucket per key; 429 with Retry-After in each dialect's error shape."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from roost.errors import RateLimited
from roost.pipeline.ratelimit import Bucket, LocalBuckets, RateLimit
from roost.storage.metadata.buckets import SharedBuckets
from tests.conftest import Env, fresh_postgres_url, make_settings, open_env


def test_bucket_grants_burst_then_refills() -> None:
    bucket = Bucket(rate=10, burst=20, now=0.0)
    assert bucket.take(20, 0.0) == 0
    assert bucket.take(1, 0.0) > 0
    assert bucket.take(5, 0.5) == 0  # half a second refills 5
    assert bucket.take(100, 0.5) > 0


def test_batch_larger_than_burst_goes_through_in_debt() -> None:
    bucket = Bucket(rate=10, burst=20, now=0.0)
    assert bucket.take(50, 0.0) == 0
    wait = bucket.take(1, 0.0)
    assert 3.0 < wait <= 3.2  # 30 tokens of debt plus one, at 10/s


def test_plan_defaults() -> None:
    limits = RateLimit()
    assert limits.limits_for("free", None, None) == (100.0, 500.0)
    assert limits.limits_for("pro", None, None) == (1000.0, 5000.0)
    assert limits.limits_for("enterprise", None, None) == (0.0, 0.0)
    assert limits.limits_for("free", 5.0, None) == (5.0, 500.0)
    assert (limits.hourly_for("free", None), limits.hourly_for("pro", None)) == (1000, 10000)
    assert (limits.hourly_for("enterprise", None), limits.hourly_for("free", 50.0)) == (0, 50)


def test_429_with_retry_after_in_every_dialect(env: Env) -> None:
    _, key = env.runtime.metadata.create_key("default", "write", rate=1, burst=2)
    headers = {"Authorization": f"Bearer {key}"}
    track = {"userId": "u", "event": "E"}
    assert env.client.post("/v1/track", json=track, headers=headers).status_code == 200
    assert env.client.post("/v1/track", json=track, headers=headers).status_code == 200
    segment = env.client.post("/v1/track", json=track, headers=headers)
    assert segment.status_code == 429
    assert int(segment.headers["retry-after"]) >= 1
    assert segment.json()["code"] == "rate_limit_exceeded"
    web = env.client.post(
        "/api/v1/events/pageview",
        json={"site_id": "default", "url": "https://a.example/"},
        headers=headers,
    )
    assert web.status_code == 429
    assert web.json()["error"]["code"] == "rate_limit_exceeded"
    assert "retry-after" in web.headers
    free = env.client.post("/post", json={"event_name": "E"}, headers=headers)
    assert free.status_code == 429 and "retry-after" in free.headers
    assert env.sql("select count(*) as n from events") == [{"n": 2}]


def test_free_plan_key_gets_plan_limits(env: Env) -> None:
    ws = env.runtime.metadata.create_workspace("small", "free")
    env.runtime.metadata.create_project(ws.id, "small-site")
    _, key = env.runtime.metadata.create_key("small-site", "write")
    item = {"type": "track", "userId": "u", "event": "E"}
    headers = {"X-Write-Key": key}
    assert (
        env.client.post("/v1/batch", json={"batch": [item] * 500}, headers=headers).status_code
        == 200
    )
    response = env.client.post("/v1/batch", json={"batch": [item] * 100}, headers=headers)
    assert response.status_code == 429


def test_an_hourly_window_beside_the_per_second_one(env: Env) -> None:
    """The web document's tiers are per hour (free 1,000/h): a key's or plan's limit may
    have both windows, and a request passes only when both grant it."""
    ws = env.runtime.metadata.create_workspace("hourly", "free")
    env.runtime.metadata.create_project(ws.id, "hourly-site")
    _, fast = env.runtime.metadata.create_key("hourly-site", "write", rate=10_000)
    _, own = env.runtime.metadata.create_key("hourly-site", "write", rate=10_000, hourly=30)
    item = {"type": "track", "userId": "u", "event": "E"}

    def batch(key: str, n: int) -> Any:
        return env.client.post(
            "/v1/batch", json={"batch": [item] * n}, headers={"X-Write-Key": key}
        )

    assert batch(fast, 600).status_code == 200  # past the free plan's burst of 500 a second
    assert batch(fast, 400).status_code == 200  # 1,000 this hour
    refused = batch(fast, 1)
    assert refused.status_code == 429, refused.text
    assert "1000 events per hour" in refused.json()["message"]
    assert int(refused.headers["retry-after"]) == 4  # one event's worth at 1,000/h: 3.6 s
    assert batch(own, 30).status_code == 200
    again = batch(own, 1)
    assert again.status_code == 429 and "30 events per hour" in again.json()["message"]
    assert int(again.headers["retry-after"]) == 120
    _, read = env.runtime.metadata.create_key("hourly-site", "read")
    assert env.sql("select count(*) as n from events", key=read) == [{"n": 1030}]


def test_a_window_that_refuses_returns_the_others_tokens() -> None:
    now = [0.0]
    limits = RateLimit(buckets=LocalBuckets(clock=lambda: now[0]), enterprise_hourly=3600)
    limits.limits["enterprise"] = (2.0, 2.0)
    key = SimpleNamespace(id="k", plan="enterprise", rate=None, burst=None, hourly=None)

    def request(n: int) -> None:
        limits(SimpleNamespace(project_key=key, events=[None] * n))  # type: ignore[arg-type]

    request(2)  # both windows grant: per second 0 left, per hour 3,598
    now[0] = 1.0
    limits.hourly["enterprise"] = 3600.0  # unchanged: one token a second
    limits.buckets.take("k:hour", 1.0, 3600.0, 3599)  # the hour nearly spent elsewhere
    with pytest.raises(RateLimited) as refused:
        request(2)  # the second grants 2, the hour refuses: the second gets them back
    assert "per hour" in refused.value.message
    assert limits.buckets.take("k", 2.0, 2.0, 2) == 0


def shared_url(tmp_path: Path) -> str:
    if os.environ.get("ROOST_TEST_METADATA") == "postgres":
        return fresh_postgres_url()
    return f"sqlite:///{tmp_path / 'limits.sqlite'}"


def test_shared_buckets_admit_the_rate_across_nodes(tmp_path: Path) -> None:
    """Two ingest nodes on one bucket: together they get its burst, then its rate."""
    now = [1000.0]
    url = shared_url(tmp_path)
    a = SharedBuckets(url, clock=lambda: now[0])
    b = SharedBuckets(url, clock=lambda: now[0])
    assert a.take("k", rate=10, burst=20, n=15) == 0  # draws 15 and a slice of 1
    wait = b.take("k", rate=10, burst=20, n=10)  # 4 left in the shared bucket
    assert wait == pytest.approx(0.6)
    now[0] += 1.0  # 10 more tokens
    assert b.take("k", rate=10, burst=20, n=10) == 0
    assert a.take("k", rate=10, burst=20, n=1) == 0  # its slice
    assert a.take("k", rate=10, burst=20, n=5) > 0  # the bucket is nearly empty
    a.close()
    b.close()


def test_a_key_drained_on_another_node_is_limited_here(tmp_path: Path) -> None:
    url = shared_url(tmp_path)
    for env in open_env(make_settings(tmp_path, rate_limit_url=url)):
        key, raw = env.runtime.metadata.create_key("default", "write", rate=1, burst=2)
        other_node = SharedBuckets(url)
        assert other_node.take(str(key.id), rate=1, burst=2, n=2) == 0
        answer = env.client.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers={"X-Write-Key": raw}
        )
        assert answer.status_code == 429, answer.text
        other_node.close()


def test_buckets_are_bounded_and_forgetting_a_full_one_loses_nothing() -> None:
    """One bucket per client address (the key-less trackers): past `most`, the buckets that
    have filled up again go first — a drained one keeps its debt."""
    now = [0.0]
    buckets = LocalBuckets(clock=lambda: now[0], most=10)
    assert buckets.take("drained", 1.0, 5.0, 5) == 0.0
    for i in range(9):
        buckets.take(f"idle{i}", 100.0, 5.0, 1)
    now[0] = 1.0  # the idle ones are full again; "drained" has 1 token of 5
    buckets.take("new", 1.0, 5.0, 1)
    assert set(buckets.buckets) == {"drained", "new"}
    assert buckets.take("drained", 1.0, 5.0, 5) > 0  # still limited: not forgotten
    for i in range(20):  # every one draining: the older half goes, the size stays bounded
        buckets.take(f"busy{i}", 0.001, 5.0, 5)
        assert len(buckets.buckets) <= 10


def test_shared_buckets_per_client_address_are_pruned_when_idle(tmp_path: Path) -> None:
    """A key-less tracker's bucket per client address goes once idle for an hour (full by
    then: the same as no row); a key's bucket stays however idle."""
    from roost.storage.metadata import buckets

    now = [1000.0]
    shared = SharedBuckets(shared_url(tmp_path), clock=lambda: now[0])
    assert shared.take("site:1:198.51.100.7", rate=10, burst=50, n=50) == 0
    assert shared.take("k", rate=0.0001, burst=5, n=5) == 0
    assert shared.take("site:1:198.51.100.7", rate=10, burst=50, n=1) > 0  # drained
    now[0] += buckets.IDLE_SECONDS + buckets.PRUNE_SECONDS
    with shared.engine.connect() as conn:
        before = conn.execute(sa.select(buckets._shared.c.key_id)).scalars().all()
    shared.held.clear()  # what this node drew: as if another node asked
    assert shared.take("k", rate=0.0001, burst=5, n=1) > 0  # its row kept: still empty
    with shared.engine.connect() as conn:
        after = conn.execute(sa.select(buckets._shared.c.key_id)).scalars().all()
    assert sorted(before) == ["k", "site:1:198.51.100.7"] and after == ["k"]
    shared.close()
