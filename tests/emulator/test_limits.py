"""Throttling: requests/minute, requests in flight, batches/minute; the XML 429 body."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.emulator.conftest import TIME_SCALE, Qbo

THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"


@pytest.fixture
def slow_clock(emu):
    """Real time = emulated time while a test counts against a one-minute window."""
    emu.configure(time_scale=1.0)
    yield
    emu.configure(time_scale=TIME_SCALE)


def assert_throttled(resp: requests.Response) -> None:
    assert resp.status_code == 429
    assert resp.headers["Content-Type"].startswith("application/xml")
    assert '<Error code="3001">' in resp.text and THROTTLE_MESSAGE in resp.text
    assert "<Detail>The request limit was reached.  Try again later</Detail>" in resp.text


def test_requests_per_minute(emu, realm, qbo: Qbo, slow_clock):
    emu.configure(realm=realm, requests_per_minute=20)
    statuses = [qbo.get("preferences").status_code for _ in range(30)]
    assert statuses.count(200) == 20 and statuses.count(429) == 10
    assert statuses[:20] == [200] * 20
    resp = qbo.get("preferences")  # JSON was asked for; the body is XML anyway
    assert_throttled(resp)
    calls = emu.calls(realm)
    assert calls["throttled"] == 11 and calls["by_status"]["429"] == 11 and calls["total"] == 31
    # the window slides in emulated time
    emu.configure(time_scale=120.0)
    time.sleep(0.6)  # 72 emulated seconds
    assert qbo.get("preferences").status_code == 200


def test_limits_are_per_realm_and_can_be_disabled(emu, realm, qbo: Qbo, slow_clock):
    emu.configure(realm=realm, requests_per_minute=3)
    assert [qbo.get("preferences").status_code for _ in range(4)] == [200, 200, 200, 429]
    other = emu.create_company()
    assert (
        Qbo(emu, other, emu.connect("test-client", other)["access_token"]).get("preferences").status_code
        == 200
    )
    emu.configure(realm=realm, limits_enabled=False)
    assert [qbo.get("preferences").status_code for _ in range(5)] == [200] * 5


def test_concurrent_requests(emu, realm, qbo: Qbo):
    emu.configure(realm=realm, concurrent_requests=2, faults=[{"kind": "slow", "delay_ms": 800}])
    results: list[int] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        session = Qbo(emu, realm, qbo.session.headers["Authorization"][7:])
        barrier.wait()
        results.append(session.get("preferences").status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 2 and results.count(429) == 4
    assert emu.calls(realm)["counters"]["throttled_concurrent_requests"] == 4
    emu.configure(realm=realm, clear_faults=True)


def test_batch_per_minute_counts_once_against_requests(emu, realm, qbo: Qbo, slow_clock):
    emu.configure(realm=realm, batch_per_minute=2, requests_per_minute=5)
    batch = {"BatchItemRequest": [{"bId": str(i), "Query": "select * from Customer"} for i in range(30)]}
    assert [qbo.post("batch", batch).status_code for _ in range(3)] == [200, 200, 429]
    # two batches of 30 items used two of the five requests
    assert [qbo.get("preferences").status_code for _ in range(4)] == [200, 200, 200, 429]
