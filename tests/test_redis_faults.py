"""Redis leaving and coming back (issue 13): a private redis-server is stopped and started
again empty while people are in the middle of a dialog; nothing they said is lost."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from models import Binding, Cadre, Staff
from models.issues import Ticket
from tests.conftest import db, oid
from tests.faults import RedisServer
from tests.wx import WeChat

# The report dialog, step by step: what the cadre says and a word of what he is asked next.
REPORT = [("反映问题", "哪方面的问题"), ("1", "遇到了什么问题"),
          ("暖气一直不热，家里很冷", "急不急"), ("1", "请核对"), ("1", "问题编号是")]


@pytest.fixture
def redis_server():
    """A private Redis the test may stop and start."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def cadre_app(make_app, redis_server):
    """The app on the private Redis, with one bound cadre; returns (app, openid)."""
    app = make_app(redis_url=redis_server.url, redis_client=None)
    openid = oid("cadre")
    with db(app) as s:
        cadre = Cadre(name="王建国", phone="13800001001", community="幸福社区")
        s.add(cadre)
        s.flush()
        s.add_all([Binding(openid=openid, cadre_id=cadre.id, relation="self"),
                   Staff(name="张医生", openid=oid("staff"), on_duty=True)])
    return app, openid


@pytest.mark.parametrize("goes, returns", [(1, 3), (2, 4), (0, 2), (3, 5)])
def test_a_report_survives_redis_going_and_coming_back_empty(cadre_app, redis_server,
                                                             goes, returns):
    """Redis stops before step `goes` and is back (empty) before step `returns`: every step
    is answered as the dialog expects, and the report is submitted once."""
    app, openid = cadre_app
    wx = WeChat(app)
    for step, (said, asked) in enumerate(REPORT):
        if step == goes:
            redis_server.stop()
        if step == returns:
            redis_server.start()
        reply = wx.text(openid, said)
        assert asked in reply, (step, said, reply)
    with db(app) as s:
        tickets = list(s.scalars(select(Ticket)))
    assert [t.description for t in tickets] == ["暖气一直不热，家里很冷"]


def test_a_frozen_redis_does_not_hold_the_answers(cadre_app, redis_server):
    """Redis frozen (SIGSTOP: connections hang) for a whole report, whose last step pushes to
    staff: every step is answered inline, as itself, well inside WeChat's 5 s (each Redis
    call used to wait 2 s: the cache lookup, the cache write and the delivery queue)."""
    app, openid = cadre_app
    wx = WeChat(app)
    assert "请回复数字选择" in wx.text(openid, "菜单")
    redis_server.freeze()
    try:
        for said, asked in REPORT:
            started = time.monotonic()
            reply = wx.text(openid, said)
            assert asked in (reply or ""), (said, reply)
            assert time.monotonic() - started < 4.5, said
    finally:
        redis_server.thaw()
    with db(app) as s:
        assert [t.description for t in s.scalars(select(Ticket))] == ["暖气一直不热，家里很冷"]
