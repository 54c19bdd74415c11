"""Template messages as WeChat shows them since May 2023 (issue 10, items 1 and 7): every kind
of push, sent through the template channel to the fake WeChat API, shows its key facts in
typed fields of at most 20 characters, with no first/remark and no line break; the field
shaping of every type; config/templates.yaml checked at start."""
from __future__ import annotations

import re
import time
from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from bot import create_app
from bot.fields import LIMITS, TEMPLATE_SHOWN, TYPES, shape
from bot.jobs import run_job
from bot.notices import GENERIC_ENTRY, facts_of, load_notices, parse, template_data
from bot.pushkinds import KINDS
from bot.settings import SettingsError, load_settings
from handlers.courses.jobs import jobs as course_jobs
from handlers.courses.service import CourseView
from handlers.fees.jobs import build_jobs
from handlers.festivals.calendar import DEFAULT_PATH as FESTIVALS, parse_calendar
from handlers.festivals.jobs import jobs as festival_jobs
from handlers.issues.views import TicketView
from models import Binding, Cadre, Delivery, Follower, Staff
from models.courses import Course, CourseSession, Enrollment
from models.fees import FeeItem
from tests.conftest import db, oid
from tests.fake_wechat import field_problem, live_settings
from tests.test_fees import CONFIG as FEES
from tests.test_issues import CONFIG as ISSUES, report
from tests.wx import WeChat

TZ = ZoneInfo("Asia/Shanghai")
NAMES = ("VISIT", "GREETING", "FEE", "FEE_PAID", "CLASS", "CLASS_UPDATE", "TICKET", "REPLY",
         "BROADCAST", "BINDING", "STAFF")
TEMPLATE_IDS = {f"WECHAT_TEMPLATE_{n}": f"TPL-{n}" for n in NAMES}
FINAL = ("sent", "sandbox", "failed", "undeliverable", "cancelled")


@pytest.fixture
def live(make_app, fake, tmp_path):
    """An app sending to the fake, with a template id for every kind of push."""
    (tmp_path / "fees.yaml").write_text(FEES, encoding="utf-8")
    (tmp_path / "issues.yaml").write_text(ISSUES, encoding="utf-8")
    return make_app(**live_settings(fake, wechat_templates=TEMPLATE_IDS), extra={
        "fees_config": str(tmp_path / "fees.yaml"),
        "issue_categories": str(tmp_path / "issues.yaml")})


def settle(app, timeout: float = 8.0) -> list[Delivery]:
    """Wait until every delivery is final; all of them, oldest first."""
    deadline = time.monotonic() + timeout
    while True:
        with db(app) as s:
            rows = s.scalars(select(Delivery).order_by(Delivery.id)).all()
        if all(r.status in FINAL for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.03)


def shown(fake, openid: str) -> list[dict]:
    """The template messages this person's phone shows, checked against today's rules."""
    messages = [m for m in fake.messages(openid) if m.api == "template"]
    for m in messages:
        data = m.payload["data"]
        assert not {"first", "remark"} & set(data), data
        for key, field in data.items():
            value = field["value"]
            assert "\n" not in value and len(value) <= TEMPLATE_SHOWN, (key, value)
            assert m.shown[key] == value, f"WeChat would cut {key}: {value!r}"
            assert field_problem(key, value, subscribe=True) is None, (key, value)
    return [m.shown for m in messages]


def joined(fields: dict) -> str:
    """All fields of one message, as one line."""
    return " | ".join(fields.values())


def run(app, jobs, name: str, now: datetime) -> int:
    """Run one job as if at `now`; its deliveries go out after commit."""
    yl = app.extensions["yinling"]
    spec = next(j for j in jobs if j.name == name)
    return run_job(yl, spec, now)


def close_window(app, openid: str) -> None:
    """The person wrote long ago: the next push can only be a template."""
    with db(app) as s:
        f = s.scalar(select(Follower).where(Follower.openid == openid))
        f.last_inbound_at = datetime(2020, 1, 1, tzinfo=TZ)


# ---- the field types ---------------------------------------------------------------------
@pytest.mark.parametrize("type_name, value, template, subscribe", [
    ("thing", "中秋节走访慰问\n9月19日至9月24日期间上门", "中秋节走访慰问 9月19日至9月24日…",
     "中秋节走访慰问 9月19日至9月24日…"),
    ("thing", "老同志您好😀", "老同志您好", "老同志您好"),
    ("character_string", "第12号问题 A-7", "12A-7", "12A-7"),
    ("character_string", "X" * 40, "X" * 20, "X" * 32),
    ("number", "共 120.50 元", "120.50", "120.50"),
    ("letter", "ab中c1", "abc", "abc"),
    ("symbol", "a-+*#@!", "-+*#@", "-+*#@"),
    ("time", "2026年3月5日 09:00（周四）", "2026年3月5日 09:00", "2026年3月5日 09:00"),
    ("time", "9月19日~9月24日\n", "9月19日~9月24日", "9月19日~9月24日"),
    ("date", "2026年11月~2026年12月，两个月", "2026年11月~2026年12月", "2026年11月~2026年12月"),
    ("amount", "合计50.00元", "50.00元", "50.00元"),
    ("amount", "¥1,234.5", "¥1234.5", "¥1234.5"),
    ("phone_number", "电话：0755-8888 6666", "0755-88886666", "0755-88886666"),
    ("car_number", "粤 a8z888 挂", "粤A8Z888挂", "粤A8Z888挂"),
    ("name", "欧阳建国同志（家属）", "欧阳建国同志家属", "欧阳建国同志家属"),
    ("name", "司马欧阳诸葛上官东方公孙", "司马欧阳诸葛上官东方", "司马欧阳诸葛上官东方"),
    ("name", "Li Xiuying", "Li Xiuying", "Li Xiuying"),
    ("phrase", "已办结（满意）", "已办结满意", "已办结满意"),
    ("phrase", "OK", "无", "无"),
    ("thing", "", "无", "无"),
])
def test_each_type_is_shaped_to_its_limit_and_characters(type_name, value, template,
                                                          subscribe):
    assert shape(value, type_name, "template") == template
    assert shape(value, type_name, "subscribe") == subscribe


NASTY = ["中秋节（9月25日）将至，组织将于9月19日至9月24日期间上门走访慰问。\n请回复“走访”",
         "Ticket No.12: 医疗就医 urgent!!! 😀\r\n第二行", "2026年3月5日 09:00~11:30 老干部活动中心三楼",
         "¥1234567890123.456元", "  ", "+86-0766-66888866 转 8001", "ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2]


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("channel", ["template", "subscribe"])
def test_any_text_is_kept_within_the_rules_wechat_checks(type_name, channel):
    """Whatever a fact says, the shaped value passes the fake's rules (written apart)."""
    for value in NASTY:
        field = shape(value, type_name, channel)
        assert field and "\n" not in field and len(field) <= LIMITS[type_name]
        if channel == "template":
            assert len(field) <= TEMPLATE_SHOWN
        if type_name in ("time", "date", "amount") and not re.search(r"\d", value):
            continue   # no time or amount in the fact: nothing valid to show
        assert field_problem(f"{type_name}1", field, subscribe=True) is None, (value, field)


def test_the_fake_refuses_subscription_notices_over_their_limits(fake):
    """Subscription notices are refused with 47003, as WeChat does; templates are cut."""
    import json
    from urllib.request import Request, urlopen

    token = json.loads(urlopen(Request(fake.base + "cgi-bin/stable_token", data=json.dumps(
        {"grant_type": "client_credential", "appid": fake.appid, "secret": fake.secret}
    ).encode(), method="POST")).read())["access_token"]

    def send(api: str, data: dict) -> dict:
        body = {"touser": "o-x", "template_id": "T", "data": {
            k: {"value": v} for k, v in data.items()}}
        url = f"{fake.base}cgi-bin/message/{api}?access_token={token}"
        return json.loads(urlopen(Request(url, data=json.dumps(body).encode(),
                                          method="POST")).read())

    long_thing = "组织将于9月19日至9月24日期间上门走访慰问各位老同志"
    fake.accept("o-x", "T")   # the user accepted template T for good (43101 otherwise)
    assert send("subscribe/bizsend", {"thing1": long_thing})["errcode"] == 47003
    assert send("subscribe/bizsend", {"phrase2": "已经办结了"})["errcode"] == 0
    assert send("subscribe/bizsend", {"phrase2": "已经办结了吧"})["errcode"] == 47003
    assert send("subscribe/bizsend", {"character_string1": "12号"})["errcode"] == 47003
    assert send("subscribe/bizsend", {"thing1": "两行\n文字"})["errcode"] == 47003
    assert send("template/send", {"character_string1": "12号"})["errcode"] == 47003
    ok = send("template/send", {"first": "标题", "thing1": long_thing,
                                "remark": "更多", "time2": "2026年9月18日\n09:00"})
    assert ok["errcode"] == 0
    [seen] = [m.shown for m in fake.messages("o-x", api="template")]
    assert seen == {"thing1": long_thing[:19] + "…", "time2": "2026年9月18日 09:00"}
    assert send("subscribe/bizsend", {"thing1": shape(long_thing, "thing", "subscribe"),
                                      "phrase2": shape("已经办结了吧", "phrase", "subscribe"),
                                      "character_string3": shape("12号", "character_string",
                                                                 "subscribe")})["errcode"] == 0


# ---- templates.yaml ----------------------------------------------------------------------
def test_shipped_config_has_an_entry_for_every_kind_that_fits():
    notices = load_notices()
    assert set(notices.entries) == set(KINDS)
    for entry in notices.entries.values():
        assert entry.template_id.startswith("WECHAT_TEMPLATE_")   # the template fallback
        assert all(f.key not in ("first", "remark") for f in entry.fields)
        if entry.channel == "subscribe":
            assert entry.subscribe.template_id.startswith("WECHAT_SUBSCRIBE_")


BROKEN = [
    ("kinds:\n  visit_notise:\n    template_id: T\n    fields: {thing1: {fact: festival, type: thing}}",
     "kinds.visit_notise: unknown kind of push"),
    ("kinds:\n  visit_notice:\n    template_id: T\n    fields: {thing1: {fact: festival, type: texte}}",
     "kinds.visit_notice.fields.thing1: unknown type 'texte'"),
    ("kinds:\n  visit_notice:\n    fields: {thing1: {fact: festival, type: thing}}",
     "kinds.visit_notice.template_id is missing"),
    ("kinds:\n  fee_reminder:\n    template_id: ''\n    fields: {thing1: {fact: fee, type: thing}}",
     "kinds.fee_reminder.template_id is missing"),
    ("kinds:\n  fee_reminder:\n    template_id: T\n    fields: {thing1: {fact: amont, type: thing}}",
     "kinds.fee_reminder.fields.thing1: unknown fact 'amont'"),
    ("kinds:\n  fee_reminder:\n    template_id: T\n    fields: {first: {fact: fee, type: thing}}",
     "no longer shows first/remark"),
    ("kinds:\n  fee_reminder:\n    template_id: T\n    fields: {thing1: {fact: fee, type: phrase}}",
     "the key says thing, the type says phrase"),
    ("kinds:\n  fee_reminder:\n    channel: sms\n    template_id: T\n    fields: {thing1: {fact: fee, type: thing}}",
     "kinds.fee_reminder.channel"),
    ("kinds: [1, 2]", "kinds: expected a mapping"),
]


@pytest.mark.parametrize("body, message", BROKEN)
def test_a_broken_config_is_refused_at_start_naming_file_and_entry(tmp_path, body, message):
    path = tmp_path / "templates.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SettingsError) as refused:
        create_app({"database_url": f"sqlite:///{tmp_path / 'x.db'}", "env": "test",
                    "extra": {"templates_config": str(path)}})
    assert str(path) in str(refused.value) and message in str(refused.value)


def test_a_missing_config_file_is_refused_at_start(tmp_path):
    with pytest.raises(SettingsError, match="templates.yaml is not usable"):
        create_app({"database_url": f"sqlite:///{tmp_path / 'x.db'}", "env": "test",
                    "extra": {"templates_config": str(tmp_path / "templates.yaml")}})


def test_template_ids_come_from_the_file_or_the_settings_it_names():
    notices = parse(yaml.safe_load(
        "kinds:\n  greeting:\n    template_id: abcDEF-123\n"
        "    fields: {thing1: {fact: occasion, type: thing}}\n"
        "  fee_reminder:\n    template_id: WECHAT_TEMPLATE_FEE\n"
        "    fields: {thing1: {fact: fee, type: thing}}"))
    live = {"wechat_appid": "wx1", "wechat_secret": "s"}
    plain = load_settings(live, environ={})
    assert notices.choose("greeting", plain)[0] == "abcDEF-123"
    assert notices.choose("fee_reminder", plain) is None      # nothing to fall back to
    env = {"WECHAT_TEMPLATE_FEE": "fee-id", "WECHAT_TEMPLATE_NOTICE": "notice-id"}
    both = load_settings(live, environ=env)
    assert notices.choose("fee_reminder", both)[0] == "fee-id"
    assert notices.choose("class_reminder", both) == ("notice-id", GENERIC_ENTRY)
    notice_only = load_settings(live, environ={"WECHAT_TEMPLATE_NOTICE": "notice-id"})
    assert notices.choose("fee_reminder", notice_only) == ("notice-id", GENERIC_ENTRY)
    assert notices.choose("fee_reminder", load_settings({}, environ={}))[0] == "sandbox-notice"


def test_every_push_of_a_kind_carries_the_kinds_facts():
    for kind in KINDS.values():
        for template, facts in kind.pushes.items():
            assert tuple(facts) == kind.facts, template
            assert (FESTIVALS.parent.parent / "templates" / f"{template}.txt").exists()


# ---- every kind of push through the template channel ------------------------------------
def _values() -> dict:
    """Values every push template can render with (as the features pass them)."""
    cal = parse_calendar(yaml.safe_load(FESTIVALS.read_text(encoding="utf-8")))
    festival = next(f for f in cal.festivals if f.key == "mid_autumn")
    day = date(2026, 9, 25)
    visit_from, visit_to = festival.visit_period(day)
    starts = datetime(2026, 3, 5, 9, 0, tzinfo=TZ)
    ticket = TicketView(number=12, category="医疗就医", urgent=True, state="resolved",
                        assignee="张医生", cadre_name="王建国", cadre_phone="13800001001",
                        community="幸福社区", address="幸福路1号",
                        description="家里老人头晕，需要上门看看，最好今天下午来", on_behalf=False,
                        created=starts, waited_minutes=45, resolution="已联系社区医生上门看过，血压正常")
    course = CourseView(number=3, name="书法班", venue="老干部活动中心三楼", capacity=20,
                        enrolled=5, waiting=0, deadline=date(2026, 3, 4), upcoming=[starts],
                        total_sessions=2, open=True)
    item = {"period": "2026-11", "year": 2026, "month": 11, "type": "党费", "amount": "50.00",
            "paid": False, "paid_on": None}
    birthday = SimpleNamespace(name="孙老", age=90, phone="13800001004", community="和平社区",
                               address=None, bound=True)
    return dict(
        festival=festival, day=day, visit_from=visit_from, visit_to=visit_to,
        cadre_name="王建国", to_family=False, signature="市委老干部局", age=80,
        text="您好，我下午三点上门。\n请家里留人。", people=[birthday], items=[item],
        total="50.00", how_to_pay="到所在党支部交给支部委员。", period="2026-11", year=2026,
        month=11, family=False, today=date(2026, 11, 20), name="书法班",
        venue="老干部活动中心三楼", number=3, starts=starts, for_family=False, c=course,
        state="enrolled", for_cadre=True, t=ticket, staff_name="张医生", ask_rating=True,
        by="赵主任", to_you=True, reason="还没解决", score=2, mine=[ticket],
        unclaimed=[ticket], group="第一党支部", content="本周五上午九点在活动中心开支部大会，请准时参加。",
        sender="李书记", who="王**", phone="138****1001", tail="a1b2", recent=["头晕"],
        said="我头晕得厉害", follow_up=False, joined=False, voice=False, recording=False, ticket=12,
        at=starts, event=None, address="幸福路1号", user="o-user", attachment=None)


# The facts a person must be able to read of each kind, in the fields WeChat shows.
KEY_FACTS = {
    "visit_notice": ["中秋节", "9月19日~9月24日", "不在家"],
    "greeting": [],
    "fee_reminder": ["党费", "2026年11月", "50.00元"],
    "fee_paid": ["党费", "50.00元", "2026年11月20日"],
    "class_reminder": ["书法班", "2026年3月5日 09:00", "老干部活动中心三楼"],
    "class_update": ["书法班", "报名成功", "2026年3月5日 09:00", "老干部活动中心三楼"],
    "ticket_update": ["12", "医疗就医"],
    "staff_reply": ["张医生", "您好，我下午三点上门"],
    "broadcast": ["第一党支部通知", "本周五上午九点"],
    "binding": [],
    "staff_alert": [],
    "escalation": ["12号 医疗就医 王建国", "上报主管"],
    "notice": [],
}
PER_PUSH = {"issues/family_new": ["已受理"], "issues/reporter_claimed": ["办理中"],
            "issues/reporter_transfer": ["已转办"], "issues/reporter_resolved": ["已办结"],
            "issues/reporter_reopened": ["已重开"], "festivals/greeting": ["中秋节问候",
                                                                        "2026年9月25日"],
            "festivals/birthday": ["80岁生日祝福"], "issues/sla_renotify": ["催办"],
            "issues/staff_new": ["新问题（紧急）", "12号 医疗就医 王建国"],
            "people/human_staff": ["人工服务第3号", "王**：我头晕得厉害"],
            "core/voice_lost": ["09:00发的语音未能保存，请再说一遍"]}
IDS = {**TEMPLATE_IDS, "WECHAT_TEMPLATE_NOTICE": "TPL-NOTICE"}


def test_every_kind_of_push_shows_its_key_facts_within_the_rules(live, fake):
    yl, values = live.extensions["yinling"], _values()
    pushes = [(template, kind) for kind in KINDS.values() for template in kind.pushes]
    people = {template: oid(template.replace("/", "-")) for template, _ in pushes}
    with db(live) as s:
        made = [yl.outbox.push(s, people[template], template,
                               {**values, "who": {"name": "王**", "phone": "138****1001",
                                                  "family": False, "openid": "o-u"}}
                               if template == "people/human_staff" else values)
                for template, _ in pushes]
    yl.outbox.after_commit(made)
    rows = settle(live)
    assert {(r.status, r.channel) for r in rows} == {("sent", "template")}
    for template, kind in pushes:
        [fields] = shown(fake, people[template])
        [message] = fake.messages(people[template])
        setting = load_notices().entries[kind.name].template_id
        assert message.payload["template_id"] == IDS[setting], template
        line = joined(fields)
        for fact in KEY_FACTS[kind.name] + PER_PUSH.get(template, []):
            assert fact in line, f"{template}: {fact!r} not in {line!r}"
        assert all(v != "无" for v in fields.values()), f"{template}: an empty fact: {line}"


def test_a_kind_without_its_own_template_shows_what_and_when(make_app, fake):
    app = make_app(**live_settings(fake))    # only WECHAT_TEMPLATE_NOTICE is set
    yl, values, openid = app.extensions["yinling"], _values(), oid("generic")
    with db(app) as s:
        made = [yl.outbox.push(s, openid, "festivals/notice", values)]
    yl.outbox.after_commit(made)
    settle(app)
    [fields] = shown(fake, openid)
    assert fake.messages(openid)[0].payload["template_id"] == "TPL-NOTICE"
    assert fields["thing1"] == "中秋节走访慰问：9月19日~9月24日" and set(fields) == {"thing1", "time2"}


def test_the_delivery_keeps_the_kind_and_facts(live):
    yl, values = live.extensions["yinling"], _values()
    with db(live) as s:
        d = yl.outbox.push(s, oid("f"), "fees/reminder", values)
        assert d.push_kind == "fee_reminder" and d.template == "fees/reminder"
        assert d.facts["fee"] == "党费" and d.facts["amount"] == "50.00元"
        assert d.facts["what"] == "待缴党费50.00元" and d.facts["when"]


def test_a_fact_the_values_lack_is_empty_and_never_fails_the_push(live):
    kind, facts = facts_of("issues/relay", {"text": "好的"}, "body",
                           datetime(2026, 3, 2, 9, 0, tzinfo=TZ))
    assert kind == "staff_reply" and facts["content"] == "好的" and facts["staff"] == ""
    data = template_data(load_notices().entries["staff_reply"].fields, facts)
    assert data["name2"]["value"] == "无"


# ---- the real features, through their jobs and the webhook ---------------------------------
def _cadre(app, name="王建国", phone="13800001001") -> tuple[int, str, str]:
    """A bound cadre with a family member: (cadre id, own openid, family openid)."""
    me, family = oid("cadre"), oid("family")
    with db(app) as s:
        cadre = Cadre(name=name, phone=phone, community="幸福社区")
        s.add(cadre)
        s.flush()
        s.add_all([Binding(openid=me, cadre_id=cadre.id, relation="self"),
                   Binding(openid=family, cadre_id=cadre.id, relation="family")])
        return cadre.id, me, family


def test_visit_notice_job_shows_festival_and_visit_period(live, fake):
    _, me, family = _cadre(live)
    run(live, festival_jobs, "festival_notices", datetime(2026, 9, 18, 9, 0, tzinfo=TZ))
    settle(live)
    for who in (me, family):
        [fields] = shown(fake, who)
        assert fields == {"thing1": "中秋节走访慰问", "date2": "9月19日~9月24日",
                          "thing3": "回复“走访 时间”或“不在家”"}


def test_fee_reminder_job_shows_fee_period_and_amount(live, fake):
    cadre_id, me, _ = _cadre(live)
    with db(live) as s:
        s.add_all([FeeItem(cadre_id=cadre_id, fee_type="党费", period="2026-11",
                           amount_fen=5000, paid=False)])
    now = datetime(2026, 11, 5, 9, 30, tzinfo=TZ)
    assert run(live, build_jobs(), "fee_reminders", now) == 2
    settle(live)
    [fields] = shown(fake, me)
    assert fields == {"thing1": "党费", "date2": "2026年11月", "amount3": "50.00元"}


def test_class_reminder_job_shows_course_time_and_place(live, fake):
    cadre_id, me, _ = _cadre(live)
    with db(live) as s:
        course = Course(name="书法班（周四上午九点，零基础也可以报名参加）", venue="老干部活动中心三楼书画室",
                        capacity=10, deadline=date(2026, 3, 4))
        course.sessions.append(CourseSession(starts_at=datetime(2026, 3, 5, 9, 0, tzinfo=TZ)))
        s.add(course)
        s.flush()
        s.add(Enrollment(course_id=course.id, cadre_id=cadre_id, state="enrolled", queue_no=1))
    run(live, course_jobs, "class_reminders", datetime(2026, 3, 4, 18, 0, tzinfo=TZ))
    settle(live)
    [fields] = shown(fake, me)
    assert fields == {"thing1": "书法班（周四上午九点，零基础也可以报名…", "time2": "2026年3月5日 09:00",
                      "thing3": "老干部活动中心三楼书画室"}


def test_ticket_updates_staff_alerts_and_replies_through_the_webhook(live, fake):
    _, me, family = _cadre(live)
    doctor = oid("doctor")
    with db(live) as s:
        s.add(Staff(name="张医生", openid=doctor, on_duty=True))
    wx = WeChat(live)
    n = report(wx, me, category="1", text="家里老人头晕得厉害，需要医生上门看看")
    settle(live)
    [alert] = shown(fake, doctor)   # the doctor never wrote: a template
    assert alert["thing1"] == "新问题" and alert["thing2"] == f"{n}号 医疗就医 王建国"
    [told] = shown(fake, family)
    assert told["character_string1"] == str(n) and told["phrase3"] == "已受理"
    close_window(live, me)
    wx.text(doctor, f"接单 {n}")
    wx.text(doctor, f"回复 {n} 您好，我下午三点上门，请家里留人")
    wx.text(doctor, f"办结 {n} 已上门看过，血压正常")
    settle(live)
    claimed, relayed, resolved = shown(fake, me)
    assert (claimed["character_string1"], claimed["phrase3"]) == (str(n), "办理中")
    assert relayed == {"thing1": f"{n}号问题的回复", "name2": "张医生",
                       "thing3": "您好，我下午三点上门，请家里留人"}
    assert (resolved["character_string1"], resolved["phrase3"]) == (str(n), "已办结")
    assert resolved["thing4"] == "已上门看过，血压正常"
