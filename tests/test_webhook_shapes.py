"""Signed but malformed input is refused cleanly; signed user content is kept (issue 12,
items 3 and 4): one log line, no traceback, never a `success` that drops a message."""
from __future__ import annotations

import logging
import time

import pytest

from bot import wxcrypto
from bot.wxmessage import message_xml, sign_request
from tests.conftest import bound_user, db, inbound
from tests.wx import post

TOKEN = "yinling-dev-token"


def signed(xml: str, **kw):
    return sign_request(xml, TOKEN, **kw)


def raw_xml(openid: str, extra: str, msg_type: str = "text", msg_id: str = "1234567") -> str:
    return (f"<xml><ToUserName>gh_yinling</ToUserName><FromUserName>{openid}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{msg_type}</MsgType>"
            f"{extra}<MsgId>{msg_id}</MsgId></xml>")


@pytest.mark.parametrize("xml", [
    raw_xml("o" * 300, "<Content>菜单</Content>"),                         # over-long openid
    raw_xml("o-user", "<Content>菜单</Content>", msg_id="9" * 400),         # 400-digit MsgId
    raw_xml("o-user", "<Content><b>x</b><i>y</i></Content>"),              # elements in text
    raw_xml("o-user", "<Event>CLICK</Event><Event>VIEW</Event>", "event"),  # Event twice
    raw_xml("o-us\ner", "<Content>菜单</Content>"),                         # newline in openid
    raw_xml("o-user", "<Event></Event>", "event"),                         # an empty Event
    raw_xml("o-user", "", "event"),                                        # no Event at all
])
def test_identifiers_out_of_shape_are_400_in_one_line(client, caplog, xml):
    caplog.set_level(logging.INFO)
    resp = post(client, signed(xml))
    assert resp.status_code == 400
    assert not [r for r in caplog.records if r.exc_info]
    assert any("webhook rejected (400)" in r.getMessage() for r in caplog.records)


def test_a_utf16_body_and_a_nul_in_the_nonce_are_400(client, caplog):
    xml = raw_xml("o-user", "<Content>菜单</Content>")
    req = signed(xml)
    resp = client.post("/wechat", query_string=req.query, data=xml.encode("utf-16"),
                       content_type="text/xml")
    assert resp.status_code == 400
    ts = str(int(time.time()))
    query = {"timestamp": ts, "nonce": "12\x0034", "signature": wxcrypto.sign(TOKEN, ts,
                                                                            "12\x0034")}
    resp = client.post("/wechat", query_string=query, data=xml.encode(), content_type="text/xml")
    assert resp.status_code == 400
    assert not [r for r in caplog.records if r.exc_info]


def test_long_user_content_is_kept_and_answered(app, wx, openid):
    words = "我家暖气不热了，" + "屋里冷得很，" * 800
    assert wx.text(openid, words)  # answered (here: a problem told straight out)
    from sqlalchemy import select

    from models import InboundMessage
    with db(app) as s:
        row = s.scalars(select(InboundMessage).where(InboundMessage.openid == openid)).one()
        assert row.status == "done" and words in row.raw


def test_a_long_location_label_mid_report_is_kept_and_answered(app, wx):
    user = bound_user(app)
    wx.text(user, "反映问题")
    reply = wx.reply_of(wx.post_xml(wx.xml(user, "location", Location_X="40.1",
                                           Location_Y="124.3", Scale="15", Label="丹" * 300)))
    assert "位置" in reply and "请问是哪方面的问题" in reply


def test_nested_events_by_design_parse(wx, openid):
    xml = (f"<xml><ToUserName>gh_yinling</ToUserName><FromUserName>{openid}</FromUserName>"
           f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
           "<Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent>"
           "<List><TemplateId>t1</TemplateId><SubscribeStatusString>accept"
           "</SubscribeStatusString><PopupScene>2</PopupScene></List>"
           "<List><TemplateId>t2</TemplateId><SubscribeStatusString>reject"
           "</SubscribeStatusString><PopupScene>2</PopupScene></List>"
           "</SubscribeMsgPopupEvent></xml>")
    # Parsed and handled (recorded in tests/test_subscriptions.py), answered `success`: the
    # user is on a page, not in the chat (before, any reply or a crash passed: 200).
    assert wx.reply_of(wx.post_xml(xml)) is None
    [row] = inbound(wx.app, openid)
    assert (row.status, row.msg_type) == ("done", "event")


def test_non_numeric_counts_in_a_delivery_report_are_logged_and_ignored(wx, openid, caplog):
    caplog.set_level(logging.INFO)
    xml = message_xml(openid, "event", Event="MASSSENDJOBFINISH", MsgID="1001",
                      Status="send success", TotalCount="abc", SentCount="x", ErrorCount="0")
    resp = wx.post_xml(xml)
    assert resp.status_code == 200 and wx.reply_of(resp) is None
    assert any("not numbers" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


def test_a_handler_whose_flush_fails_answers_kindly_and_settles(app, wx, openid, monkeypatch):
    """The error path must not touch the failed transaction before rolling it back."""
    from sqlalchemy import select

    from models import Cadre, InboundMessage

    conversation = app.extensions["yinling"].inbox.handle
    original = type(conversation).__call__

    def breaks_on_flush(self, session, message, row):
        reply, pushed = original(self, session, message, row)
        session.add(Cadre(name=None, phone=None))  # NOT NULL: the flush fails
        return reply, pushed

    monkeypatch.setattr(type(conversation), "__call__", breaks_on_flush)
    reply = wx.text(openid, "菜单")
    assert reply and "系统刚才出了点小问题" in reply
    with db(app) as s:
        row = s.scalars(select(InboundMessage).where(InboundMessage.openid == openid)).one()
        assert row.status == "failed" and row.reply == reply


def test_sql_errors_in_logs_carry_no_personal_data(app, wx, openid, monkeypatch, caplog):
    """SQLAlchemy's error text shows the statement, never the values (hide_parameters)."""
    from models import Cadre

    conversation = app.extensions["yinling"].inbox.handle
    original = type(conversation).__call__

    def breaks(self, session, message, row):
        reply, pushed = original(self, session, message, row)
        session.add(Cadre(name="张秘密", phone=None, address="幸福路秘密号"))
        return reply, pushed

    monkeypatch.setattr(type(conversation), "__call__", breaks)
    caplog.set_level(logging.INFO)
    wx.text(openid, "菜单")
    logged = caplog.text + "".join(str(r.exc_info and r.exc_info[1]) for r in caplog.records)
    assert "handler failed" in logged and "张秘密" not in logged and "幸福路秘密号" not in logged


def test_a_value_with_a_newline_cannot_forge_a_log_line(app, caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("bot.test").info("[%s] asked for a person", "o-x\n2026-11-30 INFO forged")
    [record] = [r for r in caplog.records if r.name == "bot.test"]
    assert "\n" not in record.getMessage() and "\\n2026" in record.getMessage()
