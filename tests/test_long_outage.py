"""A two-minute PostgreSQL outage (issue 13, item 1): long past WeChat's retries, while people
keep writing. Every message is answered within WeChat's wait, kept in the spool, and handled
exactly once, in order per user, when the database is back; the pool recovers by itself."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from models import Delivery, InboundMessage
from tests.conftest import bound_user, wait_for
from tests.test_spool import outage, rows  # noqa: F401 - the fixture and its reader
from tests.wx import WeChat

OUTAGE = 120.0   # seconds
EVERY = 15.0     # seconds between one user's messages during the outage
WORDS = ["党费", "菜单", "我的问题", "通知", "课程", "帮助", "党费", "菜单", "通知"]


def test_a_two_minute_outage_loses_nothing(outage):  # noqa: F811 - the imported fixture
    app, proxy, direct = outage
    wx = WeChat(app)
    users = [bound_user(app, phone=f"1380000{n:04d}") for n in range(3)]
    assert all("请回复数字选择" in wx.text(u, "菜单") for u in users)
    proxy.cut()
    cut_at, said = time.monotonic(), {u: [] for u in users}
    while time.monotonic() - cut_at < OUTAGE:
        for user in users:
            words = WORDS[len(said[user]) % len(WORDS)]
            xml = wx.xml(user, "text", Content=words)
            started = time.monotonic()
            reply = wx.reply_of(wx.post_xml(xml))
            assert time.monotonic() - started < 5.0 and "稍后答复" in (reply or "")
            if len(said[user]) == 1:            # one message WeChat sent twice anyway
                assert "稍后答复" in (wx.reply_of(wx.post_xml(xml)) or "")
            said[user].append(words)
        time.sleep(max(0.0, EVERY - (time.monotonic() - cut_at) % EVERY))
    spool = app.extensions["yinling"].inbox.spool
    assert len(spool.pending()) == sum(map(len, said.values()))
    proxy.restore()
    newcomer = bound_user(app, phone="13900009999")
    assert "请回复数字选择" in wx.text(newcomer, "菜单")   # the pool is back, no restart
    # Someone whose messages still wait in the spool is answered after them, not before.
    assert "稍后答复" in (wx.text(users[0], "谢谢") or "")
    said[users[0]].append("谢谢")
    # Nothing waits nor is being replayed (a claimed message is no longer pending, and its
    # row is only there once its transaction commits).
    assert wait_for(lambda: not spool.users(), 60)
    for user in users:
        handled = rows(direct, user)[1:]                  # after the first 菜单
        assert [c for c, _ in handled] == said[user]
        assert all(status == "done" for _, status in handled)
    with direct.connect() as conn:                        # each reply pushed once
        late = conn.execute(select(func.count()).select_from(Delivery).where(
            Delivery.campaign.like("late-reply:%"))).scalar()
        recorded = conn.execute(select(func.count()).select_from(InboundMessage)).scalar()
    assert late == sum(map(len, said.values()))
    assert recorded == sum(map(len, said.values())) + len(users) + 1   # + the newcomer
