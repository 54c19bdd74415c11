"""The account's sending rate and its daily quota (issue 10, item 4): one messages-per-second
limit for the whole account, shared by every worker through Redis (and shared out among the live
workers while Redis is away); a 45009 waits for the quota to come back instead of failing."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
import time_machine
from sqlalchemy import select

from bot.rate import SendRate, quota_back_at
from bot.settings import load_settings
from models import Delivery, utcnow
from models.messages import DeliveryWorker
from tests.conftest import TEST_REDIS_URL, db, wait_for
from tests.test_delivery import push

TZ = ZoneInfo("Asia/Shanghai")


class Planned(SendRate):
    """A SendRate that records the waits it asks for instead of sleeping them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []

    def wait(self) -> float:
        from unittest import mock

        with mock.patch("bot.rate.time.sleep", self.waits.append):
            return super().wait()


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the shared bucket needs a real Redis")
def test_two_workers_share_one_bucket_for_the_whole_account():
    client = redis_lib.Redis.from_url(TEST_REDIS_URL)
    client.delete("yinling:wechat:send-rate")
    one, two = Planned(10, client), Planned(10, client)
    for _ in range(15):                      # 30 messages at once, from two processes
        one.wait()
        two.wait()
    planned = sorted(one.waits + two.waits)
    # The first 10 go at once (the burst); each further one waits 0.1 s more: 2.0 s for the
    # 30th, whichever process sends it — not 1.0 s each, as two private buckets would allow.
    assert len(planned) == 20 and planned[-1] == pytest.approx(2.0, abs=0.15)
    client.delete("yinling:wechat:send-rate")


def test_without_redis_each_live_worker_takes_its_share(app):
    with db(app) as s:
        s.add_all([DeliveryWorker(id=f"w{i}", beat_at=utcnow()) for i in range(2)] +
                  [DeliveryWorker(id="gone", beat_at=utcnow() - timedelta(minutes=5))])
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.1)
    rate = Planned(10, dead, app.extensions["yinling"].db)
    for _ in range(15):
        rate.wait()
    # Two live workers: this one sends at 5 a second after its burst of 10.
    assert rate.waits[-1] == pytest.approx(1.0, abs=0.1) and len(rate.waits) == 5


def test_no_limit_when_the_rate_is_zero():
    assert Planned(0).wait() == 0.0


@pytest.mark.parametrize("now, kind, back", [
    ("2026-11-30T15:00", "reply", "2026-12-01T00:00"),      # a reply: at midnight
    ("2026-11-30T15:00", "bulk", "2026-12-01T08:00"),       # a broadcast: after quiet hours
    ("2026-11-30T06:00", "scheduled", "2026-12-01T08:00"),  # today's quota is gone till 00:00
])
def test_the_daily_quota_comes_back_at_midnight_and_after_quiet_hours(now, kind, back):
    settings = load_settings({"quiet_hours": "21:00-08:00"}, environ={})
    local = datetime.fromisoformat(now).replace(tzinfo=TZ)
    expected = datetime.fromisoformat(back).replace(tzinfo=TZ)
    assert quota_back_at(kind, local, settings) == expected


def test_a_spent_daily_quota_waits_for_tomorrow_instead_of_failing(live, fake, openid):
    fake.inject("template", errcode=45009, times=None)
    with time_machine.travel(datetime(2026, 11, 30, 15, 0, tzinfo=TZ), tick=True):
        did = push(live, openid, "重阳节走访通知")
        row = wait_for(lambda: _row(live, did).last_error and _row(live, did), 6)
    assert (row.status, row.attempts) == ("pending", 0)          # not failed, not counted
    assert "daily quota" in row.last_error
    assert row.not_before.astimezone(TZ) == datetime(2026, 12, 1, 0, 0, tzinfo=TZ)
    assert [api for api, who in fake.calls if who == openid] == ["template"]   # asked once


def test_a_clock_moved_back_does_not_stall_the_local_bucket():
    """time.monotonic() moved back hours (time travel in the tests) once made a worker sleep
    for hours: the local bucket owes nothing for time that went backwards."""
    from bot.rate import SendRate

    rate = SendRate(10.0)
    rate._at += 3 * 3600          # as if the clock now reads three hours earlier
    assert rate._local(10.0) == 0.0


def _row(app, delivery_id: int) -> Delivery:
    with db(app) as s:
        return s.scalar(select(Delivery).where(Delivery.id == delivery_id))
