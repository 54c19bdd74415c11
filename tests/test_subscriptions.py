"""Subscription notices (订阅通知, issue 10 item 3): WeChat's three events through the real
webhook, the chooser (bizsend for users who accepted, one-time acceptances counted, the
template otherwise, else undeliverable with the reason), values within WeChat's limits for
every kind, the JS-SDK signature and its shared ticket, and the pages' subscribe button."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import select

from bot import create_app
from bot.notices import DEFAULT_PATH as TEMPLATES_YAML
from bot.notices import load_notices
from bot.pushkinds import KINDS
from bot.settings import SettingsError, load_settings
from bot.wechat import jsapi_config, jsapi_signature
from models import Delivery, InboundMessage
from models.subscriptions import Subscription
from tests.conftest import db, oid
from tests.fake_wechat import field_problem, live_settings
from tests.test_pages import (
    PUBLIC,
    festival_config,
    notice_urls,
    open_as,
    people,  # noqa: F401  (uses this module's page_app)
    today,
)
from tests.test_template_fields import TEMPLATE_IDS, _values, settle
from tests.wx import WeChat

SUBSCRIBE_NAMES = {"visit_notice": "VISIT", "greeting": "GREETING", "fee_reminder": "FEE",
                   "fee_paid": "FEE_PAID", "class_reminder": "CLASS",
                   "class_update": "CLASS_UPDATE", "ticket_update": "TICKET",
                   "staff_reply": "REPLY", "broadcast": "BROADCAST"}
SUBSCRIBE_IDS = {f"WECHAT_SUBSCRIBE_{n}": f"SUB-{n}" for n in SUBSCRIBE_NAMES.values()}
FEE = "SUB-FEE"
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 13; V2219A) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F35) "
             "WeChat/arm64 NetType/WIFI Language/zh_CN")


def config_file(tmp_path, change) -> str:
    """config/templates.yaml as shipped, changed by `change(kinds)`; its path."""
    raw = yaml.safe_load(TEMPLATES_YAML.read_text(encoding="utf-8"))
    change(raw["kinds"])
    path = tmp_path / "templates.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture
def sub_app(make_app, fake):
    """Sends to the fake; every template and subscription template id is set."""
    return make_app(**live_settings(fake, public_url=PUBLIC,
                                    wechat_templates={**TEMPLATE_IDS, **SUBSCRIBE_IDS}))


def once_app(make_app, fake, tmp_path):
    """Like sub_app, but fee reminders are a one-time subscription template."""
    def once(kinds):
        kinds["fee_reminder"]["subscribe"]["term"] = "once"

    return make_app(**live_settings(fake, public_url=PUBLIC,
                                    wechat_templates={**TEMPLATE_IDS, **SUBSCRIBE_IDS}),
                    extra={"templates_config": config_file(tmp_path, once)})


# ---- WeChat's events, as it sends them ---------------------------------------------------
def event_xml(openid: str, event: str, items: list[dict], *, container: str | None = None,
              create_time: int | None = None) -> str:
    """A subscription-notice event with its <List> items (WeChat's documented shape)."""
    container = container or {"subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
                              "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
                              "subscribe_msg_sent_event": "SubscribeMsgSentEvent"}[event]
    lists = "".join("<List>" + "".join(
        f"<{k}>{v}</{k}>" if k in ("PopupScene", "ErrorCode", "MsgID")
        else f"<{k}><![CDATA[{v}]]></{k}>" for k, v in item.items()) + "</List>"
        for item in items)
    return (f"<xml><ToUserName><![CDATA[gh_yinling]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
            f"<{container}>{lists}</{container}></xml>")


def popup(wx, openid: str, answers: dict[str, str], scene: str = "1", **kw) -> None:
    """The user answered a subscription pop-up: template id -> accept | reject."""
    items = [{"TemplateId": t, "SubscribeStatusString": s, "PopupScene": scene}
             for t, s in answers.items()]
    assert wx.reply_of(wx.post_xml(event_xml(openid, "subscribe_msg_popup_event", items,
                                             **kw))) is None


def accept(wx, fake, openid: str, template_id: str, once: bool = False) -> None:
    """The user taps 允许: WeChat records it (the fake) and tells us (the event)."""
    fake.accept(openid, template_id, once=once)
    popup(wx, openid, {template_id: "accept"})


def row_of(app, openid: str, template_id: str) -> Subscription | None:
    with db(app) as s:
        row = s.scalar(select(Subscription).where(Subscription.openid == openid,
                                                  Subscription.template_id == template_id))
        s.expunge_all()
    return row


def push(app, openid: str, template: str = "fees/reminder") -> None:
    """One push of `template` to someone whose chat window is closed, delivered."""
    yl = app.extensions["yinling"]
    with db(app) as s:
        made = yl.outbox.push(s, openid, template, _values())
    yl.outbox.after_commit([made])
    settle(app)


def deliveries(app, openid: str) -> list[Delivery]:
    with db(app) as s:
        rows = s.scalars(select(Delivery).where(Delivery.openid == openid)
                         .order_by(Delivery.id)).all()
        s.expunge_all()
    return rows


# ---- the three events --------------------------------------------------------------------
def test_a_popup_records_each_list_item_and_counts_acceptances(sub_app):
    wx, me, at = WeChat(sub_app), oid("sub"), int(time.time())
    popup(wx, me, {"SUB-VISIT": "accept", FEE: "reject", "SUB-CLASS": "accept"},
          create_time=at)
    visit, fee, course = (row_of(sub_app, me, t) for t in ("SUB-VISIT", FEE, "SUB-CLASS"))
    assert (visit.status, visit.remaining, visit.source) == ("accept", 1, "page")
    assert (fee.status, fee.remaining) == ("reject", 0)
    assert (course.status, course.remaining) == ("accept", 1)

    # WeChat's retry of the same event is the same event: counted once.
    popup(wx, me, {"SUB-VISIT": "accept", FEE: "reject", "SUB-CLASS": "accept"},
          create_time=at)
    assert row_of(sub_app, me, "SUB-VISIT").remaining == 1
    # Another answer in the same second is another event (told apart by its items).
    popup(wx, me, {FEE: "accept"}, create_time=at)
    assert row_of(sub_app, me, FEE).status == "accept"
    # Accepting again (a one-time template) adds one more notice; in an article, scene 2.
    popup(wx, me, {"SUB-VISIT": "accept"}, scene="2", create_time=at + 1)
    visit = row_of(sub_app, me, "SUB-VISIT")
    assert (visit.remaining, visit.source) == (2, "article")
    with db(sub_app) as s:
        rows = s.scalars(select(InboundMessage).where(InboundMessage.openid == me)).all()
        assert [r.status for r in rows] == ["done"] * 3


def test_a_change_event_turns_a_notice_off(sub_app):
    wx, me = WeChat(sub_app), oid("sub")
    popup(wx, me, {"SUB-VISIT": "accept", FEE: "accept"})
    xml = event_xml(me, "subscribe_msg_change_event",
                    [{"TemplateId": "SUB-VISIT", "SubscribeStatusString": "reject"}])
    assert wx.reply_of(wx.post_xml(xml)) is None
    row = row_of(sub_app, me, "SUB-VISIT")
    assert (row.status, row.remaining, row.source) == ("reject", 0, "settings")
    # WeChat's documentation shows the change event inside a SubscribeMsgPopupEvent element.
    xml = event_xml(me, "subscribe_msg_change_event",
                    [{"TemplateId": FEE, "SubscribeStatusString": "reject"}],
                    container="SubscribeMsgPopupEvent", create_time=int(time.time()) + 1)
    assert wx.reply_of(wx.post_xml(xml)) is None
    assert row_of(sub_app, me, FEE).status == "reject"


def test_a_sent_event_is_the_final_word_on_the_notice(sub_app, fake):
    wx, me = WeChat(sub_app), oid("sub")
    accept(wx, fake, me, FEE)
    push(sub_app, me)
    push(sub_app, me, "fees/paid_notice")
    accept(wx, fake, me, "SUB-FEE_PAID")
    push(sub_app, me, "fees/paid_notice")
    first, _, third = deliveries(sub_app, me)
    assert first.channel == third.channel == "subscribe" and first.wx_msg_id
    sent = [{"TemplateId": FEE, "MsgID": first.wx_msg_id, "ErrorCode": "0",
             "ErrorStatus": "success"}]
    assert wx.reply_of(wx.post_xml(event_xml(me, "subscribe_msg_sent_event", sent))) is None
    # bizsend often answers without a msgid: the oldest notice still waiting is the one.
    with db(sub_app) as s:
        s.get(Delivery, third.id).wx_msg_id = None
    sent = [{"TemplateId": "SUB-FEE_PAID", "MsgID": "1700827132819554304", "ErrorCode": "43101",
             "ErrorStatus": "failed:user refuse to accept the msg"}]
    assert wx.reply_of(wx.post_xml(event_xml(me, "subscribe_msg_sent_event", sent,
                                             create_time=int(time.time()) + 1))) is None
    first, _, third = deliveries(sub_app, me)
    assert (first.status, first.receipt) == ("sent", "success")
    assert (third.status, third.receipt) == ("failed", "failed:user refuse to accept the msg")
    assert "43101" in third.last_error


# ---- the chooser -------------------------------------------------------------------------
def test_a_user_who_accepted_gets_the_subscription_notice_within_the_rules(sub_app, fake):
    me = oid("sub")
    accept(WeChat(sub_app), fake, me, FEE)
    push(sub_app, me)
    push(sub_app, me)   # a long-term acceptance lasts
    assert [(d.status, d.channel) for d in deliveries(sub_app, me)] == [("sent", "subscribe")] * 2
    notices = fake.messages(me, api="subscribe")
    assert len(notices) == 2 and not fake.messages(me, api="template")
    payload = notices[0].payload
    assert payload["template_id"] == FEE and payload["page"].startswith(PUBLIC + "/m/")
    assert {k: v["value"] for k, v in payload["data"].items()} == {
        "thing1": "党费", "date2": "2026年11月", "amount3": "50.00元"}
    assert all(field_problem(k, v["value"], subscribe=True) is None
               for k, v in payload["data"].items())
    assert row_of(sub_app, me, FEE).status == "accept"


def test_a_one_time_acceptance_is_used_once_then_the_template_goes(make_app, fake, tmp_path):
    app = once_app(make_app, fake, tmp_path)
    me = oid("once")
    accept(WeChat(app), fake, me, FEE, once=True)
    push(app, me)
    assert row_of(app, me, FEE).remaining == 0
    push(app, me)
    first, second = deliveries(app, me)
    assert (first.status, first.channel) == ("sent", "subscribe")
    assert (second.status, second.channel) == ("sent", "template")
    assert "no subscription notice accepted (once)" in second.last_error
    [template] = fake.messages(me, api="template")
    assert template.payload["template_id"] == "TPL-FEE"
    assert [c for c in fake.calls if c == ("subscribe", me)] == [("subscribe", me)]


def test_a_user_who_accepted_nothing_gets_the_template(sub_app, fake):
    me = oid("none")
    push(sub_app, me)
    [d] = deliveries(sub_app, me)
    assert (d.status, d.channel) == ("sent", "template")
    assert ("subscribe", me) not in fake.calls   # not even tried
    assert fake.messages(me, api="template")[0].payload["template_id"] == "TPL-FEE"


def test_wechat_saying_43101_ends_the_acceptance_and_the_template_goes(sub_app, fake):
    me = oid("refused")
    popup(WeChat(sub_app), me, {FEE: "accept"})   # we heard it, WeChat no longer has it
    push(sub_app, me)
    [d] = deliveries(sub_app, me)
    assert (d.status, d.channel) == ("sent", "template") and "43101" in d.last_error
    row = row_of(sub_app, me, FEE)
    assert (row.status, row.remaining, row.source) == ("reject", 0, "bizsend")
    push(sub_app, me)   # no second try at bizsend
    assert [c for c in fake.calls if c == ("subscribe", me)] == [("subscribe", me)]


def test_a_busy_wechat_keeps_the_one_time_acceptance_for_the_retry(make_app, fake, tmp_path):
    app = once_app(make_app, fake, tmp_path)
    me = oid("busy")
    accept(WeChat(app), fake, me, FEE, once=True)
    fake.inject("subscribe", errcode=-1, openid=me)
    push(app, me)
    [d] = deliveries(app, me)
    assert (d.status, d.channel, d.attempts) == ("sent", "subscribe", 2)
    assert row_of(app, me, FEE).remaining == 0 and len(fake.messages(me)) == 1


def test_with_no_template_either_the_push_is_undeliverable_and_says_why(make_app, fake):
    app = make_app(**live_settings(fake, wechat_template_notice="",
                                   wechat_templates=SUBSCRIBE_IDS))
    me = oid("nothing")
    push(app, me)
    [d] = deliveries(app, me)
    assert (d.status, d.channel) == ("undeliverable", "template")
    assert "no subscription notice accepted (long)" in d.last_error
    assert "no template configured" in d.last_error
    assert not fake.messages(me)


def test_no_kind_ever_sends_a_value_wechat_refuses(make_app, fake, tmp_path):
    """Every kind of push as a subscription notice: the fake's 47003 is never hit."""
    def everything(kinds):
        for name in KINDS:
            kinds[name]["channel"] = "subscribe"
            kinds[name]["subscribe"] = {"template_id": f"SUB-{name}", "term": "long"}

    app = make_app(**live_settings(fake, public_url=PUBLIC, wechat_templates=TEMPLATE_IDS),
                   extra={"templates_config": config_file(tmp_path, everything)})
    yl, wx, values = app.extensions["yinling"], WeChat(app), _values()
    pushes = [template for kind in KINDS.values() for template in kind.pushes]
    recipients = {template: oid(template.replace("/", "-")) for template in pushes}
    for template, who in recipients.items():
        for kind in KINDS:
            fake.accept(who, f"SUB-{kind}")
        popup(wx, who, {f"SUB-{kind}": "accept" for kind in KINDS})
    with db(app) as s:
        made = [yl.outbox.push(s, recipients[t], t, {**values, "who": {
            "name": "王**", "phone": "138****1001", "family": False, "openid": "o-u"}}
            if t == "people/human_staff" else values) for t in pushes]
    yl.outbox.after_commit(made)
    rows = settle(app)
    assert {(r.status, r.channel) for r in rows} == {("sent", "subscribe")}, \
        [(r.template, r.status, r.last_error) for r in rows if r.status != "sent"]
    assert not fake.messages(api="template")
    for template, who in recipients.items():
        [notice] = fake.messages(who, api="subscribe")
        kind = next(k for k in KINDS.values() if template in k.pushes).name
        assert notice.payload["template_id"] == f"SUB-{kind}"
        for key, field in notice.payload["data"].items():
            assert field_problem(key, field["value"], subscribe=True) is None, (template, key)


# ---- templates.yaml ----------------------------------------------------------------------
BROKEN = [
    (lambda k: k["fee_reminder"].pop("subscribe"), "kinds.fee_reminder.subscribe is missing"),
    (lambda k: k["fee_reminder"]["subscribe"].update(term="forever"),
     "kinds.fee_reminder.subscribe.term: 'forever' is not long or once"),
    (lambda k: k["fee_reminder"]["subscribe"].update(template_id=""),
     "kinds.fee_reminder.subscribe.template_id is missing"),
    (lambda k: k["fee_reminder"]["subscribe"].update(fields={"keyword1": {
        "fact": "fee", "type": "thing"}}), "needs typed field keys"),
    (lambda k: k["fee_reminder"]["subscribe"].update(colour="red"), "expected template_id"),
]


def test_subscription_template_ids_come_from_wechat_subscribe_settings():
    live = {"wechat_appid": "wx1", "wechat_secret": "s"}
    settings = load_settings(live, environ={"WECHAT_SUBSCRIBE_VISIT": " sub-visit-id ",
                                            "WECHAT_TEMPLATE_VISIT": "tpl-visit-id"})
    notices = load_notices(settings)
    template_id, sub = notices.subscription("visit_notice", settings)
    assert (template_id, sub.term) == ("sub-visit-id", "long")
    assert [f.key for f in sub.fields] == ["thing1", "date2", "thing3"]   # the template's
    assert notices.choose("visit_notice", settings)[0] == "tpl-visit-id"   # the fallback
    assert notices.subscription("fee_reminder", settings) is None          # its id is unset
    assert notices.subscription("staff_alert", settings) is None           # channel template
    assert notices.subscribable(settings) == [("visit_notice", "sub-visit-id", "long")]


@pytest.mark.parametrize("change, message", BROKEN)
def test_a_broken_subscribe_entry_is_refused_at_start(tmp_path, change, message):
    path = config_file(tmp_path, change)
    with pytest.raises(SettingsError) as refused:
        create_app({"database_url": f"sqlite:///{tmp_path / 'x.db'}", "env": "test",
                    "extra": {"templates_config": path}})
    assert path in str(refused.value) and message in str(refused.value)


# ---- the JS-SDK ----------------------------------------------------------------------------
def test_the_jsapi_signature_is_wechats_documented_example():
    ticket = ("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOc"
              "HKP7qg")
    url = "http://mp.weixin.qq.com?params=value"
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, url) == \
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    config = jsapi_config("wx1", ticket, url + "#top", timestamp=1414587457,
                          noncestr="Wm3WZYTPz0wzccnW")   # the #fragment is not signed
    assert config == {"appId": "wx1", "timestamp": 1414587457, "nonceStr": "Wm3WZYTPz0wzccnW",
                      "signature": "0f9de62fce790f9a083d5c99e95740ceb90c27ed"}


def test_the_jsapi_ticket_is_fetched_once_and_shared_by_processes(sub_app, make_app, fake):
    url = PUBLIC + "/m/subscribe"
    first = sub_app.extensions["yinling"].dispatcher.deliverer.client.jsapi_config(url)
    other = make_app(**live_settings(fake, public_url=PUBLIC))   # another process
    second = other.extensions["yinling"].dispatcher.deliverer.client.jsapi_config(url)
    assert fake.ticket_requests == 1
    for config in (first, second):
        assert config["appId"] == fake.appid
        assert config["signature"] == jsapi_signature(fake.jsapi_ticket, config["nonceStr"],
                                                      config["timestamp"], url)


# ---- the pages -------------------------------------------------------------------------------
def config_in(html: str) -> dict:
    return json.loads(re.search(r"var config = (\{.*?\});", html).group(1))


def test_the_subscribe_page_offers_wechats_button_with_a_signature_for_itself(sub_app, fake):
    me = oid("page")
    client = sub_app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    page = open_as(client, fake, PUBLIC + "/m/subscribe", me)
    html = page.get_data(as_text=True)
    assert "订阅消息提醒" in html and "节日走访通知" in html and "还没有订阅" in html
    assert f'<wx-open-subscribe template="{FEE}"' in html
    assert html.count("<wx-open-subscribe") == len(SUBSCRIBE_IDS)
    config = config_in(html)
    assert config["openTagList"] == ["wx-open-subscribe"] and config["appId"] == fake.appid
    assert config["signature"] == jsapi_signature(fake.jsapi_ticket, config["nonceStr"],
                                                  config["timestamp"], PUBLIC + "/m/subscribe")
    nonce = re.search(r'<script nonce="([^"]+)">', html).group(1)
    policy = page.headers["Content-Security-Policy"]
    assert f"'nonce-{nonce}'" in policy and "https://res.wx.qq.com" in policy
    assert "jweixin-1.6.0.js" in html and 'id="sdk-wait"' in html

    accept(WeChat(sub_app), fake, me, FEE)   # 允许 tapped: WeChat tells the webhook
    html = client.get("/m/subscribe").get_data(as_text=True)
    assert f'<wx-open-subscribe template="{FEE}"' not in html and "已订阅" in html
    assert html.count("<wx-open-subscribe") == len(SUBSCRIBE_IDS) - 1


def test_outside_wechat_the_subscribe_page_has_no_script_and_says_where_to_go(sub_app, fake):
    client = sub_app.test_client()
    html = open_as(client, fake, PUBLIC + "/m/subscribe", oid("page")).get_data(as_text=True)
    assert "<script" not in html and "<wx-open-subscribe" not in html
    assert 'id="open-in-wechat"' in html and "节日走访通知" in html
    assert fake.ticket_requests == 0


@pytest.fixture
def page_app(make_app, fake, tmp_path):
    """test_pages' app (a festival a week ahead) with every subscription template id set."""
    path = tmp_path / "festivals.yaml"
    path.write_text(festival_config(today() + timedelta(days=7)), encoding="utf-8")
    return make_app(**live_settings(fake, public_url=PUBLIC, extra={"festivals": str(path)},
                                    wechat_templates={**TEMPLATE_IDS, **SUBSCRIBE_IDS}))


def test_a_visit_notice_page_offers_its_own_kind_inside_wechat(page_app, fake,
                                                               people):  # noqa: F811
    app, folks = page_app, people
    url = notice_urls(app, fake, folks)[folks.cadre]   # nobody accepted yet: templates
    plain = app.test_client()
    assert "<script" not in open_as(plain, fake, url, folks.cadre).get_data(as_text=True)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    html = open_as(client, fake, url, folks.cadre).get_data(as_text=True)
    assert html.count("<wx-open-subscribe") == 1
    assert '<wx-open-subscribe template="SUB-VISIT"' in html and "节日走访通知" in html
    assert config_in(html)["signature"] == jsapi_signature(
        fake.jsapi_ticket, config_in(html)["nonceStr"], config_in(html)["timestamp"],
        PUBLIC + urlsplit(url).path)
    assert 'value="away"' in html   # the page's own answers are still there
