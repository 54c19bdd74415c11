"""Exactly-once handling: retries, concurrent copies across app instances, Redis down, budget."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import xmltodict
from sqlalchemy import func, select

from bot.inbox import dedupe_key
from bot.wxmessage import sign_request
from models import Delivery, Follower, InboundMessage, utcnow
from tests import echo
from tests.conftest import sent, wait_for
from tests.wx import WeChat, post




def test_retry_gets_the_same_reply_and_is_not_handled_again(ewx, openid):
    req = sign_request(ewx.xml(openid, Content="计数 a"), "yinling-dev-token")
    replies = [ewx.reply_of(post(ewx.client, req)) for _ in range(3)]
    assert replies == ["计数:a"] * 3
    assert echo.calls["a"] == 1
    assert len(ewx.pushes(openid)) == 1


def test_retry_replays_from_database_when_redis_cache_is_gone(ewx, openid):
    req = sign_request(ewx.xml(openid, Content="计数 b"), "yinling-dev-token")
    first = ewx.reply_of(post(ewx.client, req))
    ewx.app.extensions["yinling"].redis.flushdb()
    assert ewx.reply_of(post(ewx.client, req)) == first == "计数:b"
    assert echo.calls["b"] == 1


def test_three_concurrent_copies_across_two_app_instances(make_app, openid):
    apps = [make_app(), make_app()]
    for app in apps:
        echo.install(app)
    echo.calls.clear()
    xml = WeChat(apps[0]).xml(openid, Content="计数 c")
    req = sign_request(xml, "yinling-dev-token")
    results, barrier = [], threading.Barrier(3)

    def send(app):
        barrier.wait()
        results.append(WeChat(app).reply_of(post(app.test_client(), req)))

    threads = [threading.Thread(target=send, args=(apps[i % 2],)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert echo.calls["c"] == 1
    assert all(r in ("计数:c", None) for r in results) and "计数:c" in results
    with apps[0].extensions["yinling"].db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)
                        .where(InboundMessage.openid == openid)) == 1


def test_a_new_users_first_two_messages_at_once_make_one_follower_and_both_are_answered(
        make_app, openid):
    """Two first messages of one user reach two processes together: both create the follower
    (INSERT … ON CONFLICT DO NOTHING), one row results and both are handled, one at a time."""
    apps = [make_app(), make_app()]
    for app in apps:
        echo.install(app)
    echo.calls.clear()
    reqs = [sign_request(WeChat(apps[0]).xml(openid, Content=f"计数 {w}"), "yinling-dev-token")
            for w in ("d1", "d2")]
    results, barrier = [], threading.Barrier(2)

    def send(app, req):
        barrier.wait()
        results.append(WeChat(app).reply_of(post(app.test_client(), req)))

    threads = [threading.Thread(target=send, args=(apps[i], reqs[i])) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == ["计数:d1", "计数:d2"]
    assert echo.calls["d1"] == echo.calls["d2"] == 1
    with apps[0].extensions["yinling"].db.session() as s:
        followers = s.scalars(select(Follower).where(Follower.openid == openid)).all()
        assert len(followers) == 1 and followers[0].last_inbound_kind == "text"
        assert followers[0].last_inbound_at is not None and followers[0].subscribed


def test_events_dedupe_on_sender_time_event_and_key(ewx, openid):
    now = int(time.time())
    xml = ewx.xml(openid, "event", create_time=now, Event="CLICK", EventKey="MENU_HELP")
    for _ in range(2):
        ewx.post_xml(xml)
    other_key = ewx.xml(openid, "event", create_time=now, Event="CLICK", EventKey="X")
    ewx.post_xml(other_key)
    with ewx.app.extensions["yinling"].db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)
                        .where(InboundMessage.openid == openid)) == 2


def test_an_event_with_a_long_url_is_recorded_once_and_nothing_waits_in_the_spool(ewx, openid):
    """A VIEW event's EventKey is the whole menu URL (an OAuth link runs past 255 characters):
    its key keeps its start and a digest, so PostgreSQL records it instead of refusing it
    as too long for the column (which spooled it, and the spool could never clear it)."""
    now = int(time.time())
    url = "https://example.com/m/subscribe?" + "&".join(f"p{i}=v{i}" for i in range(60))
    other = url.replace("p59=v59", "p59=v58")  # the same start: told apart by the digest
    for key in (url, url, other):
        ewx.post_xml(ewx.xml(openid, "event", create_time=now, Event="VIEW", EventKey=key))
    yl = ewx.app.extensions["yinling"]
    assert yl.inbox.spool.pending() == []
    with yl.db.session() as s:
        keys = s.scalars(select(InboundMessage.dedupe_key)
                         .where(InboundMessage.openid == openid)).all()
    assert len(keys) == 2 and all(len(k) <= 255 for k in keys)


def test_template_callbacks_sharing_a_create_time_are_both_recorded(ewx, openid):
    now = int(time.time())
    for msg_id in ("501", "502", "502"):
        ewx.post_xml(ewx.xml(openid, "event", create_time=now,
                             Event="TEMPLATESENDJOBFINISH", MsgID=msg_id, Status="success"))
    with ewx.app.extensions["yinling"].db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)
                        .where(InboundMessage.openid == openid)) == 2


def test_redis_down_still_answers_and_dedupes(make_app, openid, cut_redis):
    app = cut_redis(make_app())
    echo.install(app)
    echo.calls.clear()
    wx = WeChat(app)
    req = sign_request(wx.xml(openid, Content="计数 d"), "yinling-dev-token")
    assert wx.reply_of(post(wx.client, req)) == "计数:d"
    assert wx.reply_of(post(wx.client, req)) == "计数:d"
    assert echo.calls["d"] == 1
    assert "请回复数字选择" in wx.text(openid, "菜单")


def test_with_redis_down_a_dialog_keeps_its_place(make_app, openid,
                                                                    cut_redis):
    app = cut_redis(make_app())
    yl = app.extensions["yinling"]
    echo.install(app)
    echo.calls.clear()
    wx = WeChat(app)
    assert "1 饺子" in wx.text(openid, "点菜")
    assert "您选了面条" in wx.text(openid, "2")
    assert "您选了面条" in wx.text(openid, "随便说点什么")  # re-asked, not sent to the menu
    assert wx.text(openid, "1") == "已下单：面条"
    assert echo.calls["order:面条"] == 1
    with yl.db.session() as s:  # cleared at the end
        assert s.scalar(select(Follower.dialog).where(Follower.openid == openid)) is None
    assert "1 饺子" in wx.text(openid, "点菜")
    assert "已取消" in wx.text(openid, "取消")


def test_slow_handler_answers_success_and_pushes_the_reply(make_app, openid):
    app = make_app(reply_budget_seconds=0.5)
    echo.install(app)
    echo.calls.clear()
    wx = WeChat(app)
    req = sign_request(wx.xml(openid, Content="慢 1.2"), "yinling-dev-token")
    started = time.perf_counter()
    resp = post(wx.client, req)
    assert time.perf_counter() - started < 1.0
    assert resp.data == b"success"
    # A retry while the first copy is still running waits, then also gets success.
    assert post(wx.client, req).data == b"success"
    assert wx.pushes(openid, wait=5) == ["慢回复"]
    assert echo.calls["slow"] == 1
    with app.extensions["yinling"].db.session() as s:
        row = s.scalar(select(InboundMessage).where(InboundMessage.openid == openid))
        assert (row.status, row.reply_mode, row.reply) == ("done", "late", "慢回复")
    # Retries after the fact still get success, never a second handling.
    assert post(wx.client, req).data == b"success"
    assert echo.calls["slow"] == 1


def test_a_message_answered_before_its_commit_is_kept_in_the_spool_until_then(make_app, openid):
    """`success` means "we have it": past the budget the record is not committed yet (it is
    written in the handler's transaction), so the message waits in the spool meanwhile, as
    answered late; once the commit lands the spool forgets it without handling it again."""
    app = make_app(reply_budget_seconds=0.3)
    echo.install(app)
    echo.calls.clear()
    wx = WeChat(app)
    xml = wx.xml(openid, Content="慢 1.0")
    key = dedupe_key(xmltodict.parse(xml)["xml"])
    assert post(wx.client, sign_request(xml, "yinling-dev-token")).data == b"success"
    spool = app.extensions["yinling"].inbox.spool
    assert spool.has(key) and spool.kept_late(key)
    assert wx.pushes(openid, wait=5) == ["慢回复"]
    assert wait_for(lambda: not spool.has(key), 5)  # the replay found it handled: forgot it
    assert echo.calls["slow"] == 1 and wx.pushes(openid) == ["慢回复"]


def test_fast_handler_is_answered_inline(ewx, openid):
    assert ewx.text(openid, "计数 e") == "计数:e"
    with ewx.app.extensions["yinling"].db.session() as s:
        assert s.scalar(select(InboundMessage.reply_mode)
                        .where(InboundMessage.openid == openid)) == "inline"


def test_failing_handler_rolls_back_and_answers_kindly(ewx, openid, caplog):
    reply = ewx.text(openid, "出错")
    assert "出了点小问题" in reply
    assert sent(ewx.app, openid) == []   # the push rolled back with the rest: none queued
    with ewx.app.extensions["yinling"].db.session() as s:
        follower = s.scalar(select(Follower).where(Follower.openid == openid))
        assert follower is None or follower.scene != "should-roll-back"
        row = s.scalar(select(InboundMessage).where(InboundMessage.openid == openid))
        assert row.status == "failed" and row.reply == reply
        assert s.scalar(select(func.count()).select_from(Delivery)
                        .where(Delivery.openid == openid)) == 0
    assert "Traceback" not in reply
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text


def test_push_is_committed_with_the_change_and_delivered_to_sandbox(ewx, openid):
    assert ewx.text(openid, "计数 f") == "计数:f"
    assert ewx.pushes(openid) == ["推送:f"]
    with ewx.app.extensions["yinling"].db.session() as s:
        d = s.scalar(select(Delivery).where(Delivery.openid == openid))
        assert d.status == "sandbox" and d.sent_at is not None


def _record_as_if_a_dead_process_had(app, wx, openid, content, seconds_ago=30):
    """The inbound row a process writes before handling, left behind when it is SIGKILLed."""
    xml = wx.xml(openid, Content=content)
    data = xmltodict.parse(xml)["xml"]
    with app.extensions["yinling"].db.session() as s:
        s.add(InboundMessage(dedupe_key=dedupe_key(data), openid=openid, msg_type="text",
                             content=content, raw=xml,
                             received_at=utcnow() - timedelta(seconds=seconds_ago)))
    return sign_request(xml, "yinling-dev-token")


def test_retry_takes_over_a_message_whose_process_died(ewx, openid):
    req = _record_as_if_a_dead_process_had(ewx.app, ewx, openid, "计数 dead")
    assert ewx.reply_of(post(ewx.client, req)) == "计数:dead"
    assert echo.calls["dead"] == 1
    assert ewx.reply_of(post(ewx.client, req)) == "计数:dead"  # and only once
    assert echo.calls["dead"] == 1
    with ewx.app.extensions["yinling"].db.session() as s:
        row = s.scalar(select(InboundMessage).where(InboundMessage.openid == openid))
        assert (row.status, row.reply_mode) == ("done", "inline")


def test_a_live_slow_handler_is_not_taken_over(make_app, openid):
    app = make_app(reply_budget_seconds=0.3)
    echo.install(app)
    echo.calls.clear()
    wx = WeChat(app)
    req = sign_request(wx.xml(openid, Content="慢 1.5"), "yinling-dev-token")
    assert post(wx.client, req).data == b"success"
    time.sleep(0.6)  # older than the budget, still running: its lock says it is alive
    assert post(wx.client, req).data == b"success"
    assert wx.pushes(openid, wait=5) == ["慢回复"]
    assert echo.calls["slow"] == 1


def test_a_message_lost_with_its_process_is_owned_up_to(ewx, openid):
    """No retry ever came: the inbox_rescue job settles the row and asks the user to resend."""
    app = ewx.app
    _record_as_if_a_dead_process_had(app, ewx, openid, "计数 lost", seconds_ago=300)
    _record_as_if_a_dead_process_had(app, ewx, openid, "计数 fresh", seconds_ago=10)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["jobs", "run", "inbox_rescue"]).output.strip() == \
        "inbox_rescue: 1"
    [told] = ewx.pushes(openid)
    assert "“计数 lost”" in told and "请再发一次" in told
    with app.extensions["yinling"].db.session() as s:
        rows = {r.content: r.status for r in s.scalars(
            select(InboundMessage).where(InboundMessage.openid == openid))}
    assert rows == {"计数 lost": "failed", "计数 fresh": "processing"}
    assert runner.invoke(args=["jobs", "run", "inbox_rescue"]).output.strip() == \
        "inbox_rescue: 0"
    assert "lost" not in echo.calls  # owned up to, never replayed behind the user's back
