"""Webhook protocol: verification, signatures, freshness, size, safe parsing, crypto, types."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot import wxcrypto
from bot.wxmessage import sign_request
from tests.conftest import db, inbound
from tests.wx import post

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
APPID = "wx1234567890abcdef"




# ---- GET verification ---------------------------------------------------------------------
def test_get_echoes_echostr_when_signature_checks(client):
    ts, nonce = str(int(time.time())), "123"
    sig = wxcrypto.sign("yinling-dev-token", ts, nonce)
    resp = client.get("/wechat", query_string={"signature": sig, "timestamp": ts,
                                               "nonce": nonce, "echostr": "hello42"})
    assert resp.status_code == 200 and resp.data == b"hello42"


def test_get_with_a_stale_timestamp_is_403(client):
    ts, nonce = str(int(time.time()) - 301), "123"
    sig = wxcrypto.sign("yinling-dev-token", ts, nonce)
    resp = client.get("/wechat", query_string={"signature": sig, "timestamp": ts,
                                               "nonce": nonce, "echostr": "hello42"})
    assert resp.status_code == 403 and b"hello42" not in resp.data


def test_get_with_bad_signature_is_403(client):
    resp = client.get("/wechat", query_string={"signature": "0" * 40, "timestamp": "1",
                                               "nonce": "2", "echostr": "x"})
    assert resp.status_code == 403 and b"x" not in resp.data


# ---- POST plaintext -----------------------------------------------------------------------
def test_plaintext_text_gets_menu(wx, openid):
    assert "请回复数字选择" in wx.text(openid, "菜单")


def test_forged_signature_is_403(wx, openid):
    req = sign_request(wx.xml(openid, Content="菜单"), "not-the-token")
    assert post(wx.client, req).status_code == 403


def test_missing_signature_is_403(wx, openid):
    req = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token")
    del req.query["signature"]
    assert post(wx.client, req).status_code == 403


# +303, not +301: int(time.time()) drops up to a second, and the request is checked a moment
# later, so a timestamp 301 s ahead could be only 299.x s ahead by then (it failed once in CI).
@pytest.mark.parametrize("skew", [-301, 303, -3600])
def test_stale_timestamp_is_403(wx, openid, skew):
    req = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token",
                       timestamp=int(time.time()) + skew)
    assert post(wx.client, req).status_code == 403


def test_timestamp_inside_window_is_accepted(wx, openid):
    req = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token",
                       timestamp=int(time.time()) - 290)
    assert "请回复数字选择" in wx.reply_of(post(wx.client, req))  # handled, not just 200


def test_nonce_reused_with_different_body_is_403(wx, openid):
    ts = int(time.time())
    first = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token",
                         timestamp=ts, nonce="555")
    assert "请回复数字选择" in wx.reply_of(post(wx.client, first))
    other = sign_request(wx.xml(openid, Content="你好"), "yinling-dev-token",
                         timestamp=ts, nonce="555")
    assert post(wx.client, other).status_code == 403


def test_byte_identical_resend_is_a_retry_not_a_replay(app, wx, openid):
    req = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token")
    first, second = post(wx.client, req), post(wx.client, req)
    assert "请回复数字选择" in wx.reply_of(first)
    assert first.data == second.data                       # the stored answer, replayed
    assert [row.status for row in inbound(app, openid)] == ["done"]  # handled once


def test_body_over_256_kib_is_refused(wx, openid):
    xml = wx.xml(openid, Content="菜" * (90 * 1024))  # 270 KiB of UTF-8
    resp = post(wx.client, sign_request(xml, "yinling-dev-token"))
    assert resp.status_code == 413


@pytest.mark.parametrize("body", [
    "not xml at all", "<xml><ToUserName>", "<xml></xml>", "<other/>",
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName></xml>",
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName>"
    "<CreateTime>x</CreateTime><MsgType>text</MsgType></xml>",
])
def test_malformed_xml_is_400(wx, body):
    resp = post(wx.client, sign_request(body, "yinling-dev-token"))
    assert resp.status_code == 400


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_attacks_fail_fast_with_400(wx, body):
    started = time.perf_counter()
    resp = post(wx.client, sign_request(body, "yinling-dev-token"))
    elapsed = time.perf_counter() - started
    assert resp.status_code == 400
    assert b"root:" not in resp.data
    assert elapsed < 0.5, elapsed


def test_entity_attack_inside_ciphertext_fails_with_400(make_app):
    app = make_app(wechat_aes_key=AES_KEY, wechat_appid=APPID, wechat_secret="s")
    req = sign_request(BILLION_LAUGHS, "yinling-dev-token", aes_key=AES_KEY, appid=APPID)
    assert post(app.test_client(), req).status_code == 400


def test_echoed_text_cannot_break_out_of_cdata(ewx, openid):
    evil = "回声 ]]></Content><MsgType><![CDATA[news]]></MsgType><Content><![CDATA[x"
    reply = ewx.text(openid, evil)
    assert reply == evil.replace("回声", "", 1).strip()


# ---- safe and compatible modes ------------------------------------------------------------
@pytest.fixture
def aes_app(make_app):
    return make_app(wechat_aes_key=AES_KEY, wechat_appid=APPID, wechat_secret="secret",
                    wechat_aes_key_previous=OLD_KEY)


def test_safe_mode_round_trip_is_encrypted_both_ways(aes_app, openid):
    from tests.wx import WeChat

    wx = WeChat(aes_app)
    resp = wx.post_xml(wx.xml(openid, Content="菜单"))
    assert b"<Encrypt>" in resp.data and "请回复数字选择".encode() not in resp.data
    assert "请回复数字选择" in wx.reply_of(resp)


def test_safe_mode_writes_no_nonce_and_a_replay_is_still_one_message(aes_app, openid):
    """msg_signature covers the ciphertext: a replayed request is the same message, which
    the inbox recognises by its MsgId, so the hot path keeps no nonce row for it."""
    from models import InboundMessage, WebhookNonce
    from tests.wx import WeChat

    wx = WeChat(aes_app)
    req = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token",
                       aes_key=AES_KEY, appid=APPID)
    first, again = post(wx.client, req), post(wx.client, req)
    assert "请回复数字选择" in wx.reply_of(first)
    assert wx.reply_of(again) == wx.reply_of(first)
    with db(aes_app) as session:
        assert session.scalar(select(func.count()).select_from(WebhookNonce)) == 0
        assert session.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.openid == openid)) == 1


def test_previous_key_still_decrypts_after_rotation(aes_app, openid):
    from tests.wx import WeChat

    wx = WeChat(aes_app)
    req = sign_request(wx.xml(openid, Content="菜单"), "yinling-dev-token",
                       aes_key=OLD_KEY, appid=APPID)
    resp = post(wx.client, req)
    assert resp.status_code == 200
    assert "请回复数字选择" in wx.reply_of(resp)  # the reply uses the current key


def test_unknown_key_is_400(aes_app, openid):
    other = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
    req = sign_request("<xml><MsgType>text</MsgType></xml>", "yinling-dev-token",
                       aes_key=other, appid=APPID)
    assert post(aes_app.test_client(), req).status_code == 400


def test_wrong_appid_inside_ciphertext_is_400(aes_app, openid):
    from tests.wx import WeChat

    req = sign_request(WeChat(aes_app).xml(openid, Content="菜单"), "yinling-dev-token",
                       aes_key=AES_KEY, appid="wxSOMEONEELSE")
    assert post(aes_app.test_client(), req).status_code == 400


def test_bad_padding_and_garbage_ciphertext_are_400(aes_app):
    for encrypt in ("AAAA", "not base64 !!", wxcrypto.encrypt_body("x", AES_KEY, APPID)[:-8]):
        ts, nonce = str(int(time.time())), f"n{len(encrypt)}"
        body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                 "msg_signature": wxcrypto.sign("yinling-dev-token", ts, nonce, encrypt)}
        resp = aes_app.test_client().post("/wechat", query_string=query, data=body)
        assert resp.status_code == 400, encrypt


def test_bad_msg_signature_is_403(aes_app, openid):
    from tests.wx import WeChat

    req = sign_request(WeChat(aes_app).xml(openid, Content="菜单"), "yinling-dev-token",
                       aes_key=AES_KEY, appid=APPID)
    req.query["msg_signature"] = "f" * 40
    assert post(aes_app.test_client(), req).status_code == 403


def test_compatible_mode_plaintext_and_ciphertext_together(aes_app, openid):
    from tests.wx import WeChat

    wx = WeChat(aes_app)
    inner = wx.xml(openid, Content="菜单")
    req = sign_request(inner, "yinling-dev-token", aes_key=AES_KEY, appid=APPID)
    encrypt = req.body.split("<![CDATA[")[2].split("]]>")[0]
    req.body = inner.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    assert "请回复数字选择" in wx.reply_of(post(wx.client, req))


def test_plaintext_message_refused_when_aes_key_set(aes_app, openid):
    """A plaintext signature covers no body: a GET-verify signature replayed on a forged
    `待办` must not reach the router."""
    from tests.wx import WeChat

    wx = WeChat(aes_app)
    resp = wx.post_xml(wx.xml(openid, Content="菜单"), aes=False)
    assert resp.status_code == 403 and "请回复数字选择".encode() not in resp.data


def test_plaintext_message_accepted_with_aes_key_when_allowed(make_app, openid):
    from tests.wx import WeChat

    wx = WeChat(make_app(wechat_aes_key=AES_KEY, wechat_appid=APPID, allow_plaintext=True))
    resp = wx.post_xml(wx.xml(openid, Content="菜单"), aes=False)
    assert resp.status_code == 200 and "请回复数字选择".encode() in resp.data


# ---- every type answered ------------------------------------------------------------------
@pytest.mark.parametrize("msg_type,fields", [
    ("image", {"PicUrl": "http://x/y.jpg", "MediaId": "m"}),
    ("location", {"Location_X": "40.1", "Location_Y": "124.3", "Scale": "15", "Label": "丹东"}),
    ("link", {"Title": "t", "Description": "d", "Url": "http://x"}),
    ("video", {"MediaId": "m", "ThumbMediaId": "t"}),
    ("shortvideo", {"MediaId": "m", "ThumbMediaId": "t"}),
    ("miniprogrampage", {"Title": "t"}),
    ("somethingnew", {"Foo": "bar"}),
])
def test_every_message_type_gets_the_menu(wx, openid, msg_type, fields):
    reply = wx.reply_of(wx.post_xml(wx.xml(openid, msg_type, **fields)))
    assert "请回复数字选择" in reply


@pytest.mark.parametrize("event,key,expect_menu", [
    ("subscribe", "", True), ("subscribe", "qrscene_community-7", True),
    ("SCAN", "community-7", True), ("CLICK", "NO_SUCH_KEY", True), ("CLICK", "MENU_HELP", True),
    ("VIEW", "http://x", False), ("LOCATION", "", False), ("unsubscribe", "", False),
    ("MASSSENDJOBFINISH", "", False), ("TEMPLATESENDJOBFINISH", "", False),
    ("some_future_event", "", True),
])
def test_every_event_is_answered(app, wx, openid, event, key, expect_menu):
    reply = wx.event(openid, event, key, MsgID="1001", Status="success")
    assert (reply is not None and "请回复数字选择" in reply) == expect_menu
    # `success` is the right answer to some events: then the effect is that it was handled.
    [row] = inbound(app, openid)
    assert (row.msg_type, row.status, row.reply) == ("event", "done", reply)


def test_voice_recognition_is_used_as_text(wx, openid):
    assert "请回复数字选择" in wx.voice(openid, "菜单。")


def test_voice_without_recognition_goes_to_a_person(wx, openid):
    reply = wx.voice(openid, None)
    assert "语音" in reply and "工作人员" in reply and "请回复数字选择" not in reply


def test_every_inbound_message_is_kept(app, wx, openid):
    wx.text(openid, "菜单")
    wx.voice(openid, "你好")
    wx.event(openid, "VIEW", "http://x")
    rows = inbound(app, openid)
    assert [r.msg_type for r in rows] == ["text", "voice", "event"]
    assert rows[0].content == "菜单" and "请回复数字选择" in rows[0].reply
    assert rows[1].content == "你好"
