"""Forwarders against a real webhook receiver on loopback: filters, consent, mapping,
batching, signatures, retries, Retry-After, dead letters, replays, restarts. Every test runs
with the forwarders in a thread and in their own process (the default)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from roost.config import Settings
from roost.consumers.forwarder_process import ForwarderProcess
from tests.conftest import Env, make_settings, open_env
from tests.integration.receiver import Receiver

FAST = {"batch_seconds": 0.05, "retry_base_seconds": 0.02, "retry_max_seconds": 0.1}


@pytest.fixture(params=["thread", "process"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, forwarders=request.param)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.release()
    r.stop()


def admin(env: Env) -> dict[str, str]:
    if not hasattr(env, "admin_key"):
        _, raw = env.runtime.metadata.create_key("default", "admin")
        env.admin_key = raw  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {env.admin_key}"}  # type: ignore[attr-defined]


def destination(env: Env, name: str, **spec: Any) -> dict[str, Any]:
    response = env.client.request(
        "PUT", f"/api/v1/admin/destinations/{name}", json=spec, headers=admin(env)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def send(env: Env, *events: dict[str, Any], key: str | None = None) -> None:
    response = env.client.post(
        "/v1/batch",
        json={"batch": [{"userId": "u1", "type": "track", **e} for e in events]},
        headers={"X-Write-Key": key or env.write_key},
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


def status(env: Env, name: str) -> dict[str, Any]:
    response = env.client.get("/api/v1/destinations", headers={"X-Write-Key": env.read_key})
    assert response.status_code == 200, response.text
    return next(d for d in response.json()["destinations"] if d["name"] == name)


def status_when(
    env: Env, name: str, until: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """The status once `until` holds (a forwarder's process reports it within 0.25 s)."""
    deadline = time.monotonic() + timeout
    found = status(env, name)
    while not until(found) and time.monotonic() < deadline:
        time.sleep(0.02)
        found = status(env, name)
    return found


def test_a_webhook_gets_the_projects_events_it_takes_signed_and_mapped(
    env: Env, receiver: Receiver
) -> None:
    destination(
        env,
        "hook",
        kind="webhook",
        url=receiver.url,
        secret="s3cret",
        headers={"X-Team": "growth"},
        types=["track", "identify"],
        events=["Order Completed", "Signed Up"],
        consent=["Analytics"],
        mapping={"price": "revenue", "coupon": "context.coupon"},
        **FAST,
    )
    other = env.runtime.metadata.create_project(1, "other")
    _, other_key = env.runtime.metadata.create_key(other.slug, "write")
    send(
        env,
        {"event": "Order Completed", "messageId": "a", "properties": {"price": 5, "coupon": "X"}},
    )
    send(env, {"event": "Page Scrolled", "messageId": "b"})  # not a name it takes
    send(env, {"type": "page", "name": "Home", "messageId": "c"})  # not a type it takes
    send(
        env,
        {
            "event": "Signed Up",
            "messageId": "d",
            "context": {"consent": {"categoryPreferences": {"Analytics": False}}},
        },
    )  # refused consent
    send(
        env,
        {
            "event": "Signed Up",
            "messageId": "e",
            "context": {"consent": {"categoryPreferences": {"Analytics": True, "Ads": False}}},
        },
    )
    send(env, {"event": "Order Completed", "messageId": "f"}, key=other_key)  # another project
    send(env, {"type": "identify", "messageId": "g", "traits": {"plan": "pro"}})
    events = receiver.wait_for(3)
    time.sleep(0.3)
    assert [e["messageId"] for e in receiver.events()] == ["a", "e", "g"]
    first = events[0]
    assert first["properties"] == {"revenue": 5}
    assert first["context"]["coupon"] == "X"
    assert first["type"] == "track" and first["event"] == "Order Completed"
    assert events[2]["traits"] == {"plan": "pro"}
    request = receiver.accepted()[0]
    assert request.headers["X-Team"] == "growth"
    stamp = request.headers["X-Roost-Timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + request.body, hashlib.sha256)
    assert request.headers["X-Roost-Signature"] == f"sha256={expected.hexdigest()}"


def test_segments_integrations_opt_an_event_out_by_the_destinations_name(
    env: Env, receiver: Receiver
) -> None:
    destination(env, "hook_all", kind="webhook", url=receiver.url, **FAST)
    send(
        env,
        {"event": "E", "messageId": "off", "integrations": {"hook_all": False}},
        {"event": "E", "messageId": "all-off", "integrations": {"All": False}},
        {"event": "E", "messageId": "all-off-but-me",
         "integrations": {"All": False, "hook_all": True}},
        {"event": "E", "messageId": "object-on", "integrations": {"All": False, "hook_all": {}}},
        {"event": "E", "messageId": "others-off", "integrations": {"Mixpanel": False}},
        {"event": "E", "messageId": "case", "integrations": {"Hook_All": False}},
        {"event": "E", "messageId": "plain"},
    )  # fmt: skip
    receiver.wait_for(5)
    time.sleep(0.3)
    assert [e["messageId"] for e in receiver.events()] == [
        "all-off-but-me", "object-on", "others-off", "case", "plain",
    ]  # fmt: skip
    found = status_when(env, "hook_all", lambda s: s["skipped"] == 2)
    assert found["skipped"] == 2
    skipped = [r for r in found["recent"] if r["status"] == "skipped"]
    assert sum(r["count"] for r in skipped) == 2 and skipped[0]["reason"] == "integrations"


def test_batches_are_cut_by_count_and_by_time(env: Env, receiver: Receiver) -> None:
    destination(env, "hook", kind="webhook", url=receiver.url, batch_count=3, **FAST)
    send(env, *({"event": "E", "messageId": f"m{i}"} for i in range(7)))
    events = receiver.wait_for(7)
    assert [e["messageId"] for e in events] == [f"m{i}" for i in range(7)]
    assert [len(r.json["batch"]) for r in receiver.accepted()] == [3, 3, 1]


def test_batches_are_cut_by_bytes(env: Env, receiver: Receiver) -> None:
    destination(env, "hook", kind="webhook", url=receiver.url, batch_bytes=2048, **FAST)
    send(
        env,
        *({"event": "E", "messageId": f"m{i}", "properties": {"pad": "x" * 600}} for i in range(6)),
    )
    receiver.wait_for(6)
    sizes = [len(r.body) for r in receiver.accepted()]
    assert len(sizes) >= 3 and all(size < 2048 + 200 for size in sizes)


def test_5xx_is_retried_until_every_event_arrives_once_in_order(
    env: Env, receiver: Receiver
) -> None:
    receiver.script.extend([(500, {}), (503, {}), (502, {})])
    destination(env, "hook", kind="webhook", url=receiver.url, batch_count=2, **FAST)
    send(env, *({"event": "E", "messageId": f"m{i}"} for i in range(5)))
    events = receiver.wait_for(5)
    time.sleep(0.2)
    assert [e["messageId"] for e in receiver.events()] == [f"m{i}" for i in range(5)]
    assert [r.status for r in receiver.received[:3]] == [500, 503, 502]
    found = status_when(env, "hook", lambda s: s["delivered"] == 5)
    assert found["failures"] == 3 and found["delivered"] == 5 and found["lag"] == 0
    assert found["last_error"].startswith("HTTP 502")
    assert len(events) == 5


def test_429_waits_as_long_as_retry_after_says(env: Env, receiver: Receiver) -> None:
    receiver.script.append((429, {"Retry-After": "1"}))
    destination(env, "hook", kind="webhook", url=receiver.url, **FAST)
    send(env, {"event": "E", "messageId": "m1"})
    receiver.wait_for(1)
    refused, accepted = receiver.received[0], receiver.accepted()[0]
    assert refused.status == 429
    assert accepted.at - refused.at >= 0.95  # the backoff alone would have been ~0.02 s


def test_a_receiver_that_was_down_gets_everything_when_it_comes_back(
    env: Env, receiver: Receiver
) -> None:
    destination(env, "hook", kind="webhook", url=receiver.url, batch_count=10, **FAST)
    receiver.stop()
    send(env, *({"event": "E", "messageId": f"m{i}"} for i in range(25)))
    failing = status_when(env, "hook", lambda s: s["failures"] >= 2)
    assert failing["failures"] >= 2 and "ConnectError" in failing["last_error"]
    receiver.start()
    events = receiver.wait_for(25)
    time.sleep(0.2)
    assert [e["messageId"] for e in receiver.events()] == [f"m{i}" for i in range(25)]
    assert len(events) == 25


def test_a_hung_destination_holds_back_only_itself(env: Env, receiver: Receiver) -> None:
    other = Receiver().start()
    try:
        receiver.script.append(("hang", {}))
        destination(env, "slow", kind="webhook", url=receiver.url, timeout=30, **FAST)
        destination(env, "fast", kind="webhook", url=other.url, **FAST)
        for i in range(20):
            send(env, {"event": "E", "messageId": f"m{i}"})  # every request acknowledged
        assert len(other.wait_for(20)) == 20
        assert receiver.events() == []
        slow = status_when(env, "slow", lambda s: (s["lag"] or 0) >= 19)
        assert slow["lag"] >= 19
        receiver.release()
        assert len(receiver.wait_for(20)) == 20
    finally:
        other.release()
        other.stop()


def test_out_of_tries_or_refused_batches_become_dead_letters_and_replay(
    env: Env, receiver: Receiver
) -> None:
    receiver.script.extend([(500, {}), (500, {}), (400, {})])
    destination(env, "hook", kind="webhook", url=receiver.url, max_attempts=2, **FAST)
    send(env, {"event": "E", "messageId": "m1"})  # 500, 500: out of tries
    deadline = time.monotonic() + 10
    while status(env, "hook")["dead_letters"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    send(env, {"event": "E", "messageId": "m2"})  # 400: never worth another try
    while status(env, "hook")["dead_letters"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    send(env, {"event": "E", "messageId": "m3"})
    assert [e["messageId"] for e in receiver.wait_for(1)] == ["m3"]
    letters = env.client.get(
        "/api/v1/destinations/hook/dead-letters", headers={"X-Write-Key": env.read_key}
    ).json()["dead_letters"]
    assert [(x["message_ids"], x["attempts"], x["status"]) for x in letters] == [
        (["m1"], 2, "dead"),
        (["m2"], 1, "dead"),
    ]
    assert letters[1]["error"].startswith("HTTP 400")
    replay = env.client.post(
        "/api/v1/admin/destinations/hook/replay",
        json={"dead_letters": [letters[1]["id"]]},
        headers=admin(env),
    )
    assert replay.json() == {"destination": "hook", "dead_letters": 1}
    assert [e["messageId"] for e in receiver.wait_for(2)] == ["m3", "m2"]
    env.client.post(
        "/api/v1/admin/destinations/hook/replay", json={"dead_letters": True}, headers=admin(env)
    )
    assert [e["messageId"] for e in receiver.wait_for(3)] == ["m3", "m2", "m1"]
    found = status_when(env, "hook", lambda s: s["delivered"] == 3)
    assert found["dead_letters"] == 0 and found["delivered"] == 3


def test_replay_from_an_offset_or_a_time_sends_again(env: Env, receiver: Receiver) -> None:
    destination(env, "hook", kind="webhook", url=receiver.url, **FAST)
    send(env, {"event": "E", "messageId": "m1"})
    send(env, {"event": "E", "messageId": "m2"})
    receiver.wait_for(2)
    offsets = env.sql("select message_id, log_offset from events order by log_offset")
    second = next(r["log_offset"] for r in offsets if r["message_id"] == "m2")
    answer = env.client.post(
        "/api/v1/admin/destinations/hook/replay",
        json={"from_offset": second},
        headers=admin(env),
    )
    assert answer.json()["after_offset"] == second - 1
    assert [e["messageId"] for e in receiver.wait_for(3)] == ["m1", "m2", "m2"]
    env.client.post(
        "/api/v1/admin/destinations/hook/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=admin(env),
    )
    assert [e["messageId"] for e in receiver.wait_for(5)][3:] == ["m1", "m2"]
    bad = env.client.post(
        "/api/v1/admin/destinations/hook/replay", json={"since": "yesterday"}, headers=admin(env)
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"


def test_the_cursor_survives_a_restart(settings: Settings, receiver: Receiver) -> None:
    envs = open_env(settings)
    env = next(envs)
    destination(env, "hook", kind="webhook", url=receiver.url, **FAST)
    send(env, {"event": "E", "messageId": "m1"})
    receiver.wait_for(1)
    receiver.stop()
    send(env, {"event": "E", "messageId": "m2"})  # acknowledged, not delivered
    time.sleep(0.2)
    envs.close()
    receiver.start()
    envs = open_env(settings)
    next(envs)
    try:
        assert [e["messageId"] for e in receiver.wait_for(2)] == ["m1", "m2"]
        time.sleep(0.3)
        assert len(receiver.events()) == 2
    finally:
        envs.close()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "carrier-pigeon"}, "destination.kind"),
        ({"kind": "webhook"}, "destination.url"),
        ({"kind": "webhook", "url": "ftp://x"}, "destination.url"),
        ({"kind": "webhook", "url": "http://x", "colour": "red"}, "destination.colour"),
        ({"kind": "webhook", "url": "http://x", "types": ["click"]}, "destination.types"),
        ({"kind": "webhook", "url": "http://x", "batch_count": 0}, "destination.batch_count"),
        ({"kind": "webhook", "url": "http://x", "max_attempts": 1.5}, "destination.max_attempts"),
        ({"kind": "webhook", "url": "http://x", "mapping": {"a": 1}}, "destination.mapping"),
        ({"kind": "segment", "url": "http://x"}, "destination.write_key"),
        ({"kind": "postgres"}, "destination.dsn"),
        ({"kind": "nats"}, "destination.subject"),
    ],
)
def test_a_bad_destination_is_refused_naming_its_field(
    env: Env, spec: dict[str, Any], field: str
) -> None:
    response = env.client.request(
        "PUT", "/api/v1/admin/destinations/d", json=spec, headers=admin(env)
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_destination_endpoints_need_the_right_key(env: Env) -> None:
    put = env.client.request(
        "PUT",
        "/api/v1/admin/destinations/d",
        json={"kind": "webhook", "url": "http://127.0.0.1:9/"},
        headers={"Authorization": f"Bearer {env.read_key}"},
    )
    assert put.status_code == 403
    assert env.client.get("/api/v1/destinations").status_code == 401


def test_a_destination_made_again_after_a_delete_starts_afresh(
    env: Env, receiver: Receiver
) -> None:
    destination(env, "hook", kind="webhook", url=receiver.url, **FAST)
    send(env, {"event": "E", "messageId": "m1"}, {"event": "E", "messageId": "m2"})
    receiver.wait_for(2)
    assert status_when(env, "hook", lambda s: s["delivered"] == 2)["delivered"] == 2
    gone = env.client.request("DELETE", "/api/v1/admin/destinations/hook", headers=admin(env))
    assert gone.status_code == 200, gone.text
    env.runtime.forwarders.sync()  # the old forwarder is stopped and its state dropped
    destination(env, "again", kind="webhook", url=receiver.url, **FAST)
    destination(env, "hook", kind="webhook", url=receiver.url, **FAST)
    for name in ("again", "hook"):
        fresh = status(env, name)
        assert fresh["delivered"] == 0 and not fresh["lag"], fresh
    send(env, {"event": "E", "messageId": "m3"})
    assert sorted(e["messageId"] for e in receiver.wait_for(4)[2:]) == ["m3", "m3"]


def test_deliveries_are_counted_in_the_servers_metrics(env: Env, receiver: Receiver) -> None:
    def delivered() -> float:
        text = env.metrics()
        found = re.search(
            r'^roost_delivered_events_total\{destination="counted"\} (\S+)$', text, re.M
        )
        return float(found.group(1)) if found else 0.0

    before = delivered()  # the registry is the test process's: other tests count too
    destination(env, "counted", kind="webhook", url=receiver.url, **FAST)
    send(env, {"event": "E", "messageId": "m1"}, {"event": "E", "messageId": "m2"})
    receiver.wait_for(2)
    deadline = time.monotonic() + 10
    while delivered() < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivered() == before + 2


def test_the_forwarders_process_runs_niced_and_is_started_again_if_it_dies(
    tmp_path: Path, receiver: Receiver
) -> None:
    for env in open_env(make_settings(tmp_path, forwarders="process", forwarders_nice=5)):
        forwarders = env.runtime.forwarders
        assert isinstance(forwarders, ForwarderProcess)
        assert forwarders.process is None  # no destination yet: no second process
        destination(env, "hook", kind="webhook", url=receiver.url, **FAST)  # starts it
        deadline = time.monotonic() + 10
        while forwarders.process is None:
            assert time.monotonic() < deadline, "the forwarders' process did not start"
            time.sleep(0.05)
        child = forwarders.process.pid
        assert child is not None
        wanted = os.getpriority(os.PRIO_PROCESS, 0) + 5
        deadline = time.monotonic() + 15  # the child lowers its priority once it has started
        while os.getpriority(os.PRIO_PROCESS, child) != wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, child) == wanted
        send(env, {"event": "E", "messageId": "m1"})
        receiver.wait_for(1)
        os.kill(child, signal.SIGKILL)
        send(env, {"event": "E", "messageId": "m2"})  # acknowledged while no forwarder runs
        deadline = time.monotonic() + 20
        while "m2" not in [e["messageId"] for e in receiver.events()]:
            assert time.monotonic() < deadline, "m2 never arrived"
            time.sleep(0.05)
        ids = [e["messageId"] for e in receiver.events()]
        assert list(dict.fromkeys(ids)) == ["m1", "m2"]  # m1 again if killed before its save
        assert forwarders.process.pid != child


def test_a_destination_made_elsewhere_starts_the_forwarders_process(
    tmp_path: Path, receiver: Receiver
) -> None:
    """One written straight to the metadata (the CLI does so while the server runs)."""
    for env in open_env(make_settings(tmp_path, forwarders="process")):
        forwarders = env.runtime.forwarders
        assert isinstance(forwarders, ForwarderProcess) and forwarders.process is None
        project = env.runtime.metadata.project("default").id
        spec = {"name": "hook", "kind": "webhook", "url": receiver.url, **FAST}
        env.runtime.destinations.set(project, spec)  # not through the API: nothing poked
        send(env, {"event": "E", "messageId": "m1"})
        receiver.wait_for(1, timeout=20)
        assert forwarders.process is not None


def test_a_poke_with_no_enabled_destination_starts_no_process(tmp_path: Path) -> None:
    """A change through the API pokes the watch; a disabled destination wants no child."""
    for env in open_env(make_settings(tmp_path, forwarders="process")):
        forwarders = env.runtime.forwarders
        assert isinstance(forwarders, ForwarderProcess)
        project = env.runtime.metadata.project("default").id
        spec = {"name": "off", "kind": "webhook", "url": "http://127.0.0.1:9/", "enabled": False}
        env.runtime.destinations.set(project, spec)
        forwarders.poke()
        time.sleep(0.5)
        assert forwarders.process is None


def test_forwarders_yield_while_many_ingest_requests_wait(
    settings: Settings, receiver: Receiver
) -> None:
    for env in open_env(replace(settings, forwarders_yield_at=1)):
        destination(env, "hook", kind="webhook", url=receiver.url, batch_count=1, **FAST)
        env.runtime.inflight.enter()  # as if a request were waiting all along: ingest is busy
        send(env, *({"event": "E", "messageId": f"b{i}"} for i in range(3)))
        receiver.wait_for(3, timeout=20)
        times = [r.at for r in receiver.accepted()]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.4  # one batch per 0.5 s
        env.runtime.inflight.leave()
        send(env, *({"event": "E", "messageId": f"q{i}"} for i in range(3)))
        receiver.wait_for(6, timeout=20)
        times = [r.at for r in receiver.accepted()][3:]
        assert max(b - a for a, b in itertools.pairwise(times)) < 0.3  # not busy: no pause
