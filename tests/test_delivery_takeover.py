"""Orphaned deliveries go out in seconds, not after the 120 s lease (issue 13, item 5).

Real `flask --app bot worker` processes on PostgreSQL (or a SQLite file) and a real Redis, the
fake WeChat API in this process, and the default lease (120 s) and sweep interval (5 s): a row
pushed while Redis was unreachable, or held by a worker killed with SIGKILL, must be taken over
within about 15 s (the tests allow 20 s on a busy machine and print the figure), by the
sweeper or a worker starting up, while a live worker inside a slow WeChat call keeps its row.
Duplicates after a kill stay within the deliveries in flight at that moment. (`database`, the
shared database of several processes, comes from conftest.)
"""
from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, select

from bot import create_app
from bot.settings import ROOT
from models import Delivery
from tests.conftest import TEST_REDIS_URL
from tests.fake_wechat import FakeWeChat
from tests.test_delivery_processes import (COUNT, FLASK, check_exactly_once, env_for, kill,
                                           statuses)

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="RQ workers in several processes "
                                                           "need a real Redis: set TEST_REDIS_URL")
TAKEOVER = 20.0   # the issue asks for ~15 s; the old code took the 120 s lease


@pytest.fixture
def redis():
    client = redis_lib.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def workers(tmp_path):
    """`start(env)` runs a delivery worker; whatever is still running is stopped at the end."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(env: dict) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")
        proc = subprocess.Popen([FLASK, "--app", "bot", "worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        if proc.poll() is None:
            kill(proc)
        log.close()


def worker_env(fake, database: str, **extra) -> dict:
    """The process tests' environment with the production lease and sweep interval."""
    env = env_for(fake, database, TEST_REDIS_URL)
    env.pop("YINLING_DELIVERY_LEASE")
    env.pop("YINLING_DELIVERY_SWEEP")
    env.update(extra)
    return env


def pusher(fake, database: str, redis_client):
    """A web process's services, pushing through `redis_client` (maybe unreachable)."""
    overrides = {"database_url": database, "redis_url": TEST_REDIS_URL, "env": "test",
                 "wechat_api_base": fake.base, "wechat_appid": fake.appid,
                 "wechat_secret": fake.secret, "quiet_hours": "off",
                 "delivery_batch_size": 20, "wechat_timeout_seconds": 0.5}
    return create_app(overrides, redis_client=redis_client).extensions["yinling"]


def push(yl, openids, *, campaign=None, kind="reply") -> list[int]:
    """Commit, then hand to the queue, as the webhook and the jobs do."""
    with yl.db.session() as session:
        pushed = [yl.outbox.push(session, who, "core/raw", {"text": f"通知{who}"},
                                 campaign=campaign, kind=kind) for who in openids]
    yl.outbox.after_commit(pushed)
    return [d.id for d in pushed]


def rows(database: str) -> dict[str, tuple[str, int]]:
    """openid -> (status, attempts)."""
    engine = create_engine(database)
    with engine.connect() as conn:
        found = conn.execute(select(Delivery.openid, Delivery.status, Delivery.attempts)).all()
    engine.dispose()
    return {openid: (status, attempts) for openid, status, attempts in found}


def wait_until(condition, timeout: float, what: str, since: float | None = None) -> float:
    """Poll until `condition()`; the seconds it took (from `since`), or fail at the deadline."""
    since = time.monotonic() if since is None else since
    while not condition():
        if time.monotonic() - since > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - since


def test_pushes_made_while_redis_was_unreachable_go_out_in_seconds(database, redis, workers):
    """The webhook could not queue 30 staff pings (RedisDown: "wait for the sweeper"); the
    worker's sweeper queues them within seconds, not when a push-time lease runs out."""
    with FakeWeChat() as fake:
        workers(worker_env(fake, database))
        live = pusher(fake, database, redis)
        push(live, ["warm-up"])
        wait_until(lambda: statuses(database).get("warm-up") == "sent", 30, "the worker")

        unreachable = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                                      socket_timeout=0.2)
        cut = pusher(fake, database, unreachable)
        staff = [f"staff-{i:02d}" for i in range(30)]
        pushed_at = time.monotonic()
        push(cut, staff)
        assert redis.llen("rq:queue:yinling-delivery") == 0   # nothing reached the queue
        took = wait_until(lambda: all(statuses(database).get(s) == "sent" for s in staff),
                          TAKEOVER, "the pings pushed while Redis was unreachable",
                          since=pushed_at)
        print(f"pushed while Redis was unreachable: all 30 sent {took:.1f} s after the push")
        received = Counter(m.openid for m in fake.messages())
        assert all(received[s] == 1 for s in staff), received
        live.db.dispose()
        cut.db.dispose()


def test_a_killed_workers_deliveries_are_taken_over_in_seconds(database, redis, workers):
    """SIGKILL mid-broadcast: the rows it had claimed (sending) and taken from its queue
    message (pending) go out from a second worker within seconds; only the ones in flight at
    the kill may arrive twice."""
    with FakeWeChat(latency=0.1) as fake:
        env = worker_env(fake, database)
        live = pusher(fake, database, redis)
        push(live, [f"kill-{i:03d}" for i in range(COUNT)], campaign="kill-test", kind="bulk")
        first = workers(env)
        try:
            wait_until(lambda: len(fake.messages()) >= 40, 30, "the first deliveries")
        finally:
            kill(first)
        killed_at = time.monotonic()
        before = statuses(database)
        in_flight = {o for o, s in before.items() if s == "sending"}
        held = Counter(s for s in before.values() if s != "sent")
        assert held, "the kill came too late to test anything"
        workers(env)
        took = wait_until(lambda: set(statuses(database).values()) == {"sent"}, TAKEOVER,
                          "the killed worker's deliveries", since=killed_at)
        print(f"killed worker held {dict(held)}: all {COUNT} sent {took:.1f} s after the kill")
        check_exactly_once(fake, database, in_flight)
        live.db.dispose()


def test_a_live_worker_inside_a_slow_call_is_not_taken_over(database, redis, workers):
    """Worker B dies inside a WeChat call; worker A starts and, while it is itself inside a
    10 s call, takes over B's delivery within seconds and leaves its own alone."""
    with FakeWeChat() as fake:
        env = worker_env(fake, database, WECHAT_TIMEOUT="12", YINLING_DELIVERY_SWEEP="1")
        live = pusher(fake, database, redis)
        fake.inject("*", delay=30, openid="gone-y")   # B never sees this answer
        b = workers(env)
        push(live, ["gone-y"])
        wait_until(lambda: ("template", "gone-y") in fake.calls, 30, "B inside its call")
        kill(b)
        killed_at = time.monotonic()

        fake.inject("*", delay=10, openid="slow-x")
        workers(env)
        push(live, ["slow-x"])
        wait_until(lambda: ("template", "slow-x") in fake.calls, 30, "A inside its slow call")
        seen = []

        def y_sent() -> bool:
            now = rows(database)
            if now["gone-y"][0] == "sent":
                seen.append(now["slow-x"])
                return True
            return False

        took = wait_until(y_sent, TAKEOVER, "B's delivery to be taken over", since=killed_at)
        print(f"dead worker's delivery sent again {took:.1f} s after the kill; "
              f"the live worker's slow one was then {seen[0]}")
        assert seen[0] == ("sending", 1), "A's own call had ended: the test proved nothing"
        wait_until(lambda: rows(database)["slow-x"][0] == "sent", 15, "A's slow delivery")
        final = rows(database)
        assert final["slow-x"] == ("sent", 1)                  # never taken over
        assert final["gone-y"] == ("sent", 2)                  # taken over once
        assert [who for _, who in fake.calls].count("slow-x") == 1
        assert len(fake.messages("slow-x")) == 1
        assert len(fake.messages("gone-y")) <= 2               # B's call was in flight
        live.db.dispose()


def test_a_40001_storm_through_two_worker_processes_forces_one_refresh(database, redis,
                                                                        workers):
    """Issue 13, item 6, with real processes: while WeChat answers 40001 to every send, two
    workers retrying every half second force at most one stable_token refresh between them
    (before the fix each cycle of each worker forced one, 13 in 10 s); once the storm passes,
    every push goes out exactly once."""
    with FakeWeChat() as fake:
        env = worker_env(fake, database, YINLING_DELIVERY_BACKOFF="0.5",
                         YINLING_DELIVERY_MAX_ATTEMPTS="60")
        for _ in range(2):
            workers(env)
        for api in ("template", "custom"):                  # the storm: every send refused
            fake.inject(api, errcode=40001, times=None)
        yl = pusher(fake, database, redis)
        ids = push(yl, [f"storm-{i}" for i in range(20)])
        storm_started = time.monotonic()
        wait_until(lambda: min(n for _, n in rows(database).values()) >= 3, 30,
                   "every push to be tried three times in the storm")
        time.sleep(max(0.0, 8.0 - (time.monotonic() - storm_started)))  # storm for ~8 s
        tries = sum(n for _, n in rows(database).values())
        forced = fake.token_requests.count(True)
        with fake.lock:
            fake.faults.clear()                                # the storm passes
        took = wait_until(lambda: set(rows(database).values()) and all(
            status == "sent" for status, _ in rows(database).values()), 30,
            "every push to go out after the storm")
        yl.dispatcher.shutdown()
        yl.db.dispose()
    print(f"{tries} sends tried in the storm, {len(fake.token_requests)} token requests, "
          f"{forced} forced; all {len(ids)} sent {took:.1f} s after it")
    assert forced <= 1
    received = Counter(m.openid for m in fake.messages())
    assert sorted(received) == sorted(f"storm-{i}" for i in range(20))
    assert set(received.values()) == {1}
