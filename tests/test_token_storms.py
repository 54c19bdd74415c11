"""40001 storms (issue 13, item 6): forced token refreshes are rationed across processes.

Two WeChatClients sharing one Redis stand for two worker processes. The fake API answers 40001
to every send (a storm), so each cycle the platform hands back the very token just rejected:
a forced refresh may follow at most once per 30 s and 20 times a (Beijing) day, whichever
process asks; the rest end in RETRY_LATER. Time moves by time-machine; a real Redis server's
clock cannot be moved, so its keys are aged by hand instead.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest
import redis as redis_lib
import time_machine

from bot.settings import load_settings
from bot.wechat import Outcome, WeChatClient
from tests.fake_wechat import live_settings

BEIJING = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 1, 10, 0, tzinfo=BEIJING)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture(params=["stand-in", "redis"])
def shared_redis(request):
    """One Redis for both 'processes': the in-process stand-in, or the real one when set."""
    if request.param == "stand-in":
        yield fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return
    if not TEST_REDIS_URL:
        pytest.skip("real Redis: set TEST_REDIS_URL")
    client = redis_lib.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


class Clock:
    """Moves the test's time, and Redis's with it."""

    def __init__(self, traveller, redis_client):
        self.traveller, self.redis = traveller, redis_client

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the app, the fake API and Redis's key expiry."""
        self.traveller.shift(seconds)
        if not isinstance(self.redis, fakeredis.FakeRedis):   # the stand-in follows the clock
            age_keys(self.redis, seconds)

    def until(self, moment: datetime) -> None:
        """Let time pass until `moment`."""
        self.advance((moment - datetime.now(BEIJING)).total_seconds())


def age_keys(client, seconds: float) -> None:
    """Shorten every key's time to live by `seconds`, as if the server's clock had moved."""
    ms = int(seconds * 1000)
    for key in client.scan_iter():
        left = client.pttl(key)
        if left < 0:
            continue   # no expiry, or already gone
        if left <= ms:
            client.delete(key)
        else:
            client.pexpire(key, left - ms)


@pytest.fixture
def clock(shared_redis):
    """Frozen at START (Beijing morning); `clock.advance(s)` moves it."""
    with time_machine.travel(START, tick=False) as traveller:
        yield Clock(traveller, shared_redis)


def client_for(fake, redis_client, **overrides) -> WeChatClient:
    """A client as one worker process would build it."""
    settings = load_settings(live_settings(fake, **overrides), environ={})
    return WeChatClient(settings, redis_client)


def two_processes(fake, redis_client, **overrides) -> tuple[WeChatClient, WeChatClient]:
    """Two clients on one Redis, both already holding the shared token."""
    first, second = (client_for(fake, redis_client, **overrides) for _ in range(2))
    assert first.send_text("o-warm", "早").ok and second.send_text("o-warm", "早").ok
    assert fake.token_requests == [False]
    return first, second


def storm_round(clients, sends: int = 3) -> list:
    """Every client sends `sends` messages while the API answers 40001 to each."""
    return [c.send_text(f"o-{i}", "您好") for i in range(sends) for c in clients]


def forced(fake) -> int:
    """How many forced stable_token refreshes the fake has seen."""
    return fake.token_requests.count(True)


def rationed_warnings(caplog) -> list[str]:
    """The warnings saying a forced refresh was refused."""
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "no forced refresh left" in r.getMessage()]


def test_a_40001_storm_forces_at_most_once_per_30_seconds_across_processes(
        fake, shared_redis, clock, caplog):
    caplog.set_level(logging.WARNING, logger="bot.wechat")
    clients = two_processes(fake, shared_redis)
    fake.inject("custom", errcode=40001, times=None)

    results = storm_round(clients, sends=6)
    assert forced(fake) == 1
    assert all(r.outcome is Outcome.RETRY_LATER for r in results)
    assert any("rationed (one per 30 s)" in r.reason for r in results)
    assert len(rationed_warnings(caplog)) == 2   # once per process, not once per delivery

    clock.advance(25)   # (a real Redis server's own clock moves too: keep a margin)
    storm_round(clients)
    assert forced(fake) == 1                      # still inside the 30 s
    clock.advance(6)
    results = storm_round(clients)
    assert forced(fake) == 2                      # one more, shared by both processes
    assert all(r.outcome is Outcome.RETRY_LATER for r in results)


def test_a_long_storm_forces_at_most_20_times_a_day_shared_by_processes(
        fake, shared_redis, clock, caplog):
    caplog.set_level(logging.WARNING, logger="bot.wechat")
    clients = two_processes(fake, shared_redis)
    fake.inject("custom", errcode=40001, times=None)

    results = []
    for _ in range(30):                           # 30 cycles, each past the 30 s gap
        results += storm_round(clients, sends=2)
        clock.advance(31)
    assert forced(fake) == 20
    assert all(r.outcome is Outcome.RETRY_LATER for r in results)
    assert "rationed (20 a day)" in results[-1].reason
    daily = [m for m in rationed_warnings(caplog) if "20 a day" in m]
    assert len(daily) == 2                        # said once per process, not per delivery

    clock.until((START + timedelta(days=1)).replace(hour=0, minute=0, second=5))
    storm_round(clients, sends=2)
    assert forced(fake) == 21                     # Beijing midnight gives a new allowance


def test_a_rejected_token_is_replaced_by_the_one_another_process_refreshed(fake, shared_redis):
    first, second = two_processes(fake, shared_redis, wechat_timeout_seconds=1.0,
                                  delivery_lease_seconds=4)
    fake.inject("custom", errcode=40001, times=1)
    assert first.send_text("o-1", "一").ok        # 40001, normal mode same token, forced
    assert fake.token_requests == [False, False, True]

    # A third process is in the middle of a refresh: it holds the lock (up to 4 s here).
    busy = shared_redis.lock(second.tokens.lock_key, timeout=10, thread_local=False)
    assert busy.acquire(blocking=False)
    try:
        started = time.monotonic()
        result = second.send_text("o-2", "二")    # its token was ended by the forced refresh
        waited = time.monotonic() - started
    finally:
        busy.release()
    assert result.ok
    assert fake.token_requests == [False, False, True]   # re-read from Redis, not fetched
    assert waited < 1.0                                   # and without queuing for the lock
    assert [c for c, _ in fake.calls].count("custom") == 6   # warm 2, 40001 + ok, 42001 + ok


def test_without_redis_each_process_keeps_its_own_ration(fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # nothing listens here
    dead = redis_lib.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    with time_machine.travel(START, tick=False) as traveller:
        client = client_for(fake, dead)
        assert client.send_text("o-warm", "早").ok
        fake.inject("custom", errcode=40001, times=None)
        results = storm_round([client], sends=5)
        assert forced(fake) == 1
        assert all(r.outcome is Outcome.RETRY_LATER for r in results)
        traveller.shift(31)
        storm_round([client], sends=2)
        assert forced(fake) == 2

