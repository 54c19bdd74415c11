"""急难愁盼 tickets through the real webhook: report, route, claim race, relay, transfer,
resolve, rate, reopen, SLA escalation by time travel, digest, permissions."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml
from sqlalchemy import func, select

from bot.jobs import run_job
from handlers.issues.chat import parse_ref
from handlers.issues.jobs import jobs as issue_jobs
from handlers.issues.policy import DEFAULT_PATH, PolicyError, parse_policy
from models import Binding, Cadre, Delivery, Follower, Staff, utcnow
from models.issues import Ticket, TicketAttachment, TicketEvent
from tests.conftest import db, oid, sent

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)  # a working Monday morning
CONFIG = """
categories:
  - {key: medical, name: 医疗就医, staff: [张医生]}
  - {key: housing, name: 住房, staff: [李房管]}
  - {key: benefits, name: 待遇保障, staff: []}
  - {key: utilities, name: 供暖水电, staff: [李房管]}
  - {key: care, name: 生活照料, staff: []}
  - {key: other, name: 其他, staff: []}
sla:
  normal: {renotify_after_minutes: 30, escalate_after_minutes: 120}
  urgent: {renotify_after_minutes: 10, escalate_after_minutes: 30}
  reply_within_working_days: 1
working_hours:
  days: [1, 2, 3, 4, 5]
  hours: ["08:30-12:00", "13:30-17:30"]
"""


@pytest.fixture
def app(make_app, tmp_path):
    """The app, reading this test's issue configuration."""
    path = tmp_path / "issue_categories.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return make_app(extra={"issue_categories": str(path)})


@dataclass
class People:
    """Openids of everyone in the story."""

    cadre: str
    family: str
    doctor: str      # 张医生: on duty, routed 医疗就医
    housing: str     # 李房管: on duty, routed 住房 / 供暖水电
    spare: str       # 王五: staff, off duty
    boss: str        # 赵主任: supervisor, off duty
    stranger: str    # follows the account, bound to nobody


@pytest.fixture
def people(app) -> People:
    """A cadre with one family member, three staff and a supervisor (rows made directly)."""
    p = People(*(oid(t) for t in ("cadre", "family", "doctor", "housing", "spare", "boss",
                                  "stranger")))
    with db(app) as s:
        cadre = Cadre(name="王建国", phone="13800001001", community="幸福社区",
                      address="幸福路1号")
        s.add(cadre)
        s.flush()
        s.add_all([Binding(openid=p.cadre, cadre_id=cadre.id, relation="self"),
                   Binding(openid=p.family, cadre_id=cadre.id, relation="family"),
                   Staff(name="张医生", openid=p.doctor, on_duty=True),
                   Staff(name="李房管", openid=p.housing, on_duty=True),
                   Staff(name="王五", openid=p.spare, on_duty=False),
                   Staff(name="赵主任", openid=p.boss, role="supervisor", on_duty=False)])
    return p


def report(wx, openid: str, category: str = "1", text: str = "家里老人头晕，需要上门看看",
           urgency: str = "1") -> int:
    """Walk the report dialog by text and return the new ticket's number."""
    assert "哪方面的问题" in wx.text(openid, "反映问题")
    assert "遇到了什么问题" in wx.text(openid, category)
    assert "急不急" in wx.text(openid, text)
    assert "请核对" in wx.text(openid, urgency)
    ack = wx.text(openid, "1")
    return int(re.search(r"问题编号是 (\d+) 号", ack).group(1))


def ticket_row(app, number: int) -> dict:
    """The ticket's columns, its event kinds and its attachments, read fresh."""
    with db(app) as s:
        t = s.get(Ticket, number)
        row = {c.key: getattr(t, c.key) for c in Ticket.__table__.columns}
        row["events"] = [e.kind for e in t.events]
        row["attachments"] = [(a.kind, a.media_id, a.url, a.label) for a in t.attachments]
        row["assignee"] = t.assignee.name if t.assignee else None
        return row


def run(app, name: str, now: datetime) -> int:
    """Run one of the feature's jobs as if at `now`."""
    yl = app.extensions["yinling"]
    spec = next(j for j in issue_jobs if j.name == name)
    return run_job(yl, spec, now)


# ---- reporting ---------------------------------------------------------------------------
def test_report_by_text_routes_to_category_staff_and_acknowledges(wx, app, people):
    n = report(wx, people.cadre, category="1", urgency="2")
    t = ticket_row(app, n)
    assert (t["state"], t["category"], t["urgent"], t["on_behalf"]) == \
        ("open", "medical", True, False)
    assert t["description"] == "家里老人头晕，需要上门看看" and t["events"] == ["created"]
    [push] = sent(app, people.doctor)
    assert f"【新问题】{n}号 医疗就医（紧急）" in push and "13800001001" in push
    assert "回复“接单”" in push
    assert sent(app, people.housing) == [] and sent(app, people.boss) == []
    assert any("王建国通过银龄通反映了一个问题" in b for b in sent(app, people.family))
    assert wx.pushes(people.doctor)[0] == push  # really delivered (sandbox)


def test_ack_tells_the_number_and_what_happens_next(wx, people):
    wx.text(people.cadre, "急难愁盼")
    wx.text(people.cadre, "住房")  # the category by name works too
    wx.text(people.cadre, "楼道的灯坏了一个月")
    wx.text(people.cadre, "一般")
    ack = wx.text(people.cadre, "１")  # full-width digit
    assert re.search(r"问题编号是 \d+ 号", ack)
    assert "值班工作人员已经收到通知" in ack and "我的问题" in ack and "补充" in ack


def test_report_by_voice_with_photo_and_location_at_any_step(wx, app, people):
    assert "哪方面的问题" in wx.click(people.cadre, "MENU_REPORT")
    photo = wx.xml(people.cadre, "image", PicUrl="http://mmbiz.example/p1.jpg", MediaId="PHOTO1")
    assert "收到照片（共1张）" in wx.reply_of(wx.post_xml(photo))
    assert "遇到了什么问题" in wx.voice(people.cadre, "四。")
    assert "没能听清" in wx.voice(people.cadre, None)
    assert "急不急" in wx.voice(people.cadre, "暖气片不热，家里只有十二度。")
    place = wx.xml(people.cadre, "location", Location_X="40.12", Location_Y="124.38",
                   Scale="15", Label="丹东市振兴区幸福路1号")
    reply = wx.reply_of(wx.post_xml(place))
    assert "收到位置：丹东市振兴区幸福路1号" in reply and "急不急" in reply
    summary = wx.voice(people.cadre, "二")
    assert "照片：1张" in summary and "位置：丹东市振兴区幸福路1号" in summary
    photo2 = wx.xml(people.cadre, "image", PicUrl="http://mmbiz.example/p2.jpg", MediaId="PHOTO2")
    assert "照片：2张" in wx.reply_of(wx.post_xml(photo2))  # the summary is redrawn
    n = int(re.search(r"编号是 (\d+)", wx.voice(people.cadre, "一。")).group(1))
    t = ticket_row(app, n)
    assert t["description"] == "暖气片不热，家里只有十二度。" and t["category"] == "utilities"
    assert ("image", "PHOTO1", "http://mmbiz.example/p1.jpg", None) in t["attachments"]
    assert ("image", "PHOTO2", "http://mmbiz.example/p2.jpg", None) in t["attachments"]
    assert ("location", None, None, "丹东市振兴区幸福路1号") in t["attachments"]
    assert ("voice", "m1", None, None) in t["attachments"]
    assert "照片2张" in sent(app, people.housing)[0]


def test_one_breath_report_by_voice_skips_the_description_step(wx, app, people):
    assert "哪方面的问题" in wx.voice(people.cadre, "反映问题，我家暖气片不热，屋里才十二度。")
    assert "急不急" in wx.voice(people.cadre, "供暖水电")
    assert "内容：我家暖气片不热，屋里才十二度。" in wx.voice(people.cadre, "紧急")
    n = int(re.search(r"编号是 (\d+)", wx.text(people.cadre, "1")).group(1))
    t = ticket_row(app, n)
    assert (t["category"], t["urgent"]) == ("utilities", True)
    assert ("voice", "m1", None, None) in t["attachments"]
    assert "遇到了什么问题" in wx.text(people.cadre, "反映问题 住房")  # category given


def test_problem_told_instead_of_its_kind_is_kept(wx, app, people):
    wx.text(people.cadre, "反映问题")
    reply = wx.text(people.cadre, "楼上天天漏水到我家厨房")
    assert "记下了您说的情况" in reply and "1. 医疗就医" in reply
    assert "急不急" in wx.text(people.cadre, "2")
    assert "内容：楼上天天漏水到我家厨房" in wx.text(people.cadre, "1")


def test_cancel_at_confirm_or_midway_creates_nothing(wx, app, people):
    for steps in (["反映问题", "1", "头疼得厉害", "2", "0"], ["反映问题", "2", "取消"],
                  ["反映问题", "退出"]):
        replies = [wx.text(people.cadre, s) for s in steps]
        assert "已取消" in replies[-1]
    with db(app) as s:
        assert s.scalar(select(func.count(Ticket.id))) == 0
        assert s.scalar(select(func.count(Delivery.id))) == 0
    # `1` is a menu choice again (the first item starts a fresh report), not a confirmation.
    assert "哪方面的问题" in wx.text(people.cadre, "1")
    with db(app) as s:
        assert s.scalar(select(func.count(Ticket.id))) == 0


def test_unexpected_answers_reask_and_rewrite_starts_over(wx, app, people):
    wx.text(people.cadre, "反映问题")
    assert "没听明白" in wx.text(people.cadre, "9") and "1. 医疗就医" in \
        wx.text(people.cadre, "随便")
    wx.text(people.cadre, "2")
    assert "没听明白" in wx.text(people.cadre, "3")  # a bare number is no description
    wx.text(people.cadre, "屋顶漏水")
    assert "没听明白" in wx.text(people.cadre, "5")
    wx.text(people.cadre, "2")
    restart = wx.text(people.cadre, "2")
    assert "重新填写" in restart and "哪方面的问题" in restart
    wx.text(people.cadre, "1")
    wx.text(people.cadre, "胸口闷")
    assert "紧急程度：一般" in wx.text(people.cadre, "1")
    wx.text(people.cadre, "1")
    with db(app) as s:
        assert s.scalars(select(Ticket.description)).all() == ["胸口闷"]


def test_family_reports_on_behalf_and_the_cadre_sees_it(wx, app, people):
    assert "您正在代王建国反映问题" in wx.text(people.family, "反映问题")
    wx.text(people.family, "5")
    wx.text(people.family, "老人一个人在家，需要有人帮忙买菜")
    wx.text(people.family, "1")
    n = int(re.search(r"编号是 (\d+)", wx.text(people.family, "1")).group(1))
    t = ticket_row(app, n)
    assert t["on_behalf"] and t["reporter_openid"] == people.family
    with db(app) as s:
        ev = s.scalar(select(TicketEvent).where(TicketEvent.ticket_id == n))
        assert (ev.actor_role, ev.actor_openid) == ("family", people.family)
        assert ev.on_behalf_cadre_id == t["cadre_id"]
    assert any("家人代王建国" in b for b in sent(app, people.cadre))
    assert f"{n}号 生活照料｜已提交" in wx.text(people.cadre, "我的问题")
    # 生活照料 has no routed staff: every on-duty staff member hears of it.
    assert sent(app, people.doctor) and sent(app, people.housing)


def test_nobody_on_duty_goes_to_supervisors(wx, app, people):
    with db(app) as s:
        for st in s.scalars(select(Staff)):
            st.on_duty = False
    n = report(wx, people.cadre, category="2")
    assert f"【新问题】{n}号 住房" in sent(app, people.boss)[0]
    assert sent(app, people.housing) == [] and sent(app, people.spare) == []


def test_category_staff_off_duty_falls_back_to_everyone_on_duty(wx, app, people):
    with db(app) as s:
        s.scalar(select(Staff).where(Staff.name == "李房管")).on_duty = False
    report(wx, people.cadre, category="2")
    assert len(sent(app, people.doctor)) == 1 and sent(app, people.housing) == []


# ---- the reporter ------------------------------------------------------------------------
def test_my_issues_newest_first_with_states(wx, people):
    first = report(wx, people.cadre, category="1", text="看病挂不上号")
    second = report(wx, people.cadre, category="2", text="楼道灯坏了")
    wx.text(people.housing, f"接单 {second}")
    listing = wx.click(people.cadre, "MENU_MY_ISSUES")
    assert listing.index(f"{second}号 住房｜李房管正在办理") < \
        listing.index(f"{first}号 医疗就医｜已提交，等工作人员接单")
    assert "请先绑定" in wx.text(people.stranger, "我的问题")


def test_add_note_tells_the_staff_on_the_ticket(wx, app, people):
    n = report(wx, people.cadre, category="2", text="厨房漏水")
    assert "已补充到" in wx.text(people.cadre, f"补充 {n} 楼上也在漏")
    assert "楼上也在漏" in sent(app, people.housing)[-1]  # unclaimed: the routed staff
    wx.text(people.doctor, f"转办 {n} 王五")
    assert "负责的工作人员已收到" in wx.text(people.family, f"补充{n}，邻居家也漏了")
    assert "邻居家也漏了" in sent(app, people.spare)[-1]
    # Without a number: the one open ticket. Without words: it asks, and a photo will do.
    assert "请说说要为" in wx.text(people.cadre, "补充")
    photo = wx.xml(people.cadre, "image", PicUrl="http://mmbiz.example/leak.jpg", MediaId="L1")
    assert "已补充到" in wx.reply_of(wx.post_xml(photo))
    assert "http://mmbiz.example/leak.jpg" in sent(app, people.spare)[-1]
    assert ("image", "L1", "http://mmbiz.example/leak.jpg", None) in \
        ticket_row(app, n)["attachments"]
    assert ticket_row(app, n)["events"].count("note") == 3


def test_add_note_to_someone_elses_ticket_is_not_found(wx, app, people):
    n = report(wx, people.cadre)
    with db(app) as s:
        other = Cadre(name="李秀英", phone="13800001002")
        s.add(other)
        s.flush()
        s.add(Binding(openid=people.stranger, cadre_id=other.id, relation="self"))
    assert "没有找到您反映的" in wx.text(people.stranger, f"补充 {n} 看看")
    assert "没有正在办理的问题" in wx.text(people.stranger, "补充 看看")
    assert ticket_row(app, n)["events"] == ["created"]


# ---- staff triage ------------------------------------------------------------------------
def test_claim_race_exactly_one_wins(app, people):
    n = report(_wx(app), people.cadre)
    claimants = [people.doctor, people.housing, people.spare, people.boss]
    replies: dict[str, str] = {}
    barrier = threading.Barrier(len(claimants))

    def claim(openid):
        wx = _wx(app)
        barrier.wait()
        replies[openid] = wx.text(openid, f"接单 {n}")

    threads = [threading.Thread(target=claim, args=(o,)) for o in claimants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o, r in replies.items() if r.startswith("已接单")]
    assert len(winners) == 1, replies
    t = ticket_row(app, n)
    assert t["events"] == ["created", "claimed"] and t["assign_round"] == 1
    for openid, reply in replies.items():
        if openid not in winners:
            assert f"{n}号问题已由{t['assignee']}在" in reply and "接单了" in reply
    assert any(f"已由工作人员{t['assignee']}接手" in b for b in sent(app, people.cadre))


def _wx(app):
    from tests.wx import WeChat

    return WeChat(app)


def test_push_then_claim_and_reply_without_a_number(wx, app, people):
    n = report(wx, people.cadre, category="1")
    claimed = wx.text(people.doctor, "接单")
    assert claimed.startswith(f"已接单：{n}号") and "13800001001" in claimed
    answer = wx.text(people.doctor, "回复 您好，我下午三点上门")
    assert f"已回复{n}号问题" in answer and "共2人" in answer
    for who in (people.cadre, people.family):
        assert f"【{n}号问题 回复】工作人员张医生：\n您好，我下午三点上门" in sent(app, who)[-1]
    t = ticket_row(app, n)
    assert t["events"] == ["created", "claimed", "replied"] and t["last_reply_at"]


def test_bare_claim_applies_to_the_latest_push_or_the_last_ticket_touched(wx, app, people):
    first = report(wx, people.cadre, category="1", text="腿疼走不了路")
    second = report(wx, people.cadre, category="1", text="假牙坏了")
    assert wx.text(people.doctor, "接单").startswith(f"已接单：{second}号")
    assert ticket_row(app, first)["state"] == "open"
    wx.text(people.doctor, f"详情 {first}")
    assert wx.text(people.doctor, "接单").startswith(f"已接单：{first}号")


def test_reply_numbers_and_text_that_starts_with_a_number(wx, app, people):
    n = report(wx, people.cadre, category="2")
    wx.text(people.housing, f"回复 {n}，12号楼的水已经关了")
    assert "12号楼的水已经关了" in sent(app, people.cadre)[-1]
    wx.text(people.housing, "回复 3点前到")  # the focus ticket; `3点` is words
    assert "3点前到" in sent(app, people.cadre)[-1]


def test_reply_on_open_ticket_claims_it_and_voice_works_for_staff(wx, app, people):
    n = report(wx, people.cadre, category="2")
    answer = wx.voice(people.housing, f"回复{n}，马上安排师傅。")
    assert "已为您接单并回复" in answer
    assert ticket_row(app, n)["assignee"] == "李房管"
    assert "马上安排师傅" in sent(app, people.family)[-1]


def test_relay_skips_unsubscribed_family_and_reports_reachability(wx, app, people):
    n = report(wx, people.cadre)
    wx.event(people.family, "unsubscribe")
    wx.text(people.doctor, f"接单 {n}")
    answer = wx.text(people.doctor, f"回复 {n} 明天上午来")
    assert "转达给王建国。" in answer and "可在微信聊天中收到" in answer
    assert not any("明天上午来" in b for b in sent(app, people.family))
    with db(app) as s:  # two days of silence close the window
        s.scalar(select(Follower).where(Follower.openid == people.cadre)).last_inbound_at = \
            datetime.now(TZ) - timedelta(hours=49)
    assert "将改用通知消息送达" in wx.text(people.doctor, f"回复 {n} 还在吗")


def test_transfer_resolve_rate_and_reopen(wx, app, people):
    n = report(wx, people.cadre, category="1")
    wx.text(people.doctor, f"接单 {n}")
    assert "转给李房管" in wx.text(people.doctor, f"转办 {n} 李房管")
    assert f"张医生把{n}号 医疗就医转给了您" in sent(app, people.housing)[-1]
    assert "转由工作人员李房管负责" in sent(app, people.cadre)[-1]
    assert "由李房管负责" in wx.text(people.doctor, f"回复 {n} 我还想说")
    assert "已办结" in wx.text(people.housing, f"办结 {n} 已联系社区医院，明早上门")
    resolved = sent(app, people.cadre)[-1]
    assert "已联系社区医院，明早上门" in resolved and "直接回复数字1-5" in resolved
    assert "直接回复数字" not in sent(app, people.family)[-1]  # only the reporter is asked
    assert "谢谢您的评价" in wx.text(people.cadre, "5")
    assert "谢谢您的评价" not in wx.text(people.cadre, "4")  # a later digit is a menu choice
    assert "已经打过分了" in wx.text(people.cadre, f"评价 {n} 3")
    t = ticket_row(app, n)
    assert (t["state"], t["rating"]) == ("resolved", 5)
    assert "重新打开" in wx.text(people.doctor, f"重开 {n} 老人说还没人来")
    t = ticket_row(app, n)
    assert (t["state"], t["assignee"], t["rating"], t["assign_round"]) == \
        ("claimed", "李房管", None, 3)
    assert f"张医生重新打开了{n}号" in sent(app, people.housing)[-1]
    assert t["events"] == ["created", "claimed", "transferred", "resolved", "rated",
                           "reopened"]


def test_rating_question_is_asked_once(wx, app, people):
    n = report(wx, people.cadre)
    wx.text(people.doctor, f"办结 {n} 已电话指导用药")
    listing = wx.text(people.cadre, "我的问题")  # anything else drops the question…
    assert f"{n}号 医疗就医｜已办结" in listing and f"评价 {n} 5" in listing
    assert "谢谢您的评价" not in wx.text(people.cadre, "5")  # …and a digit is no rating
    assert ticket_row(app, n)["rating"] is None
    assert "没听明白" not in wx.text(people.cadre, "菜单")
    assert "谢谢您的评价（" in wx.text(people.cadre, "评价 2")  # explicit, later
    assert "只给了2分" in sent(app, people.boss)[-1]  # low ratings reach a supervisor


def test_reopening_withdraws_the_rating_question(wx, app, people):
    n = report(wx, people.cadre)
    wx.text(people.doctor, f"办结 {n} 好了")
    wx.text(people.doctor, f"重开 {n} 还没好")
    assert "谢谢您的评价" not in wx.text(people.cadre, "5")
    assert ticket_row(app, n)["rating"] is None
    assert "重新打开" in sent(app, people.cadre)[-1]


def test_rating_out_of_range_reasks(wx, app, people):
    n = report(wx, people.cadre)
    wx.text(people.doctor, f"办结 {n} 好了")
    assert "1-5" in wx.text(people.cadre, "7")  # meant as a score: the question again
    assert "4分" in wx.text(people.cadre, "四")


def test_wrong_state_commands_get_clear_answers(wx, app, people):
    n = report(wx, people.cadre)
    assert "还没有办结，不用重开" in wx.text(people.doctor, f"重开 {n}")
    assert "请写上办理结果" in wx.text(people.doctor, f"办结 {n}")
    assert "请写上要回复的话" in wx.text(people.doctor, f"回复 {n}")
    assert "没有找到999号问题" in wx.text(people.doctor, "接单 999")
    assert "请写上问题编号" in wx.text(people.spare, "接单")  # nothing pushed to 王五
    assert "请写上问题编号" in wx.text(people.doctor, "办结")
    wx.text(people.doctor, f"接单 {n}")
    assert "已经是您在办理" in wx.text(people.doctor, f"接单 {n}")
    assert "没有找到叫“钱七”" in wx.text(people.doctor, f"转办 {n} 钱七")
    with db(app) as s:
        s.add(Staff(name="孙八"))  # invited, has not redeemed the invite in WeChat yet
    assert "还没有在微信上登记" in wx.text(people.doctor, f"转办 {n} 孙八")
    assert "已经是张医生在办理" in wx.text(people.doctor, f"转办 {n} 张医生")
    wx.text(people.doctor, f"办结 {n} 已处理")
    for command in (f"接单 {n}", f"回复 {n} 你好", f"转办 {n} 王五", f"办结 {n} 再办一次"):
        assert "已经办结" in wx.text(people.housing, command) and "重开" in \
            wx.text(people.housing, command)
    assert "还在办理" not in wx.text(people.cadre, f"评价 {n} 5")


def test_permissions(wx, app, people):
    n = report(wx, people.cadre)
    for command in ("待办", f"接单 {n}", f"回复 {n} 你好", f"详情 {n}", f"办结 {n} 好"):
        assert "没有权限" in wx.text(people.cadre, command)
    assert "请先绑定" in wx.text(people.stranger, "反映问题")
    assert "请先绑定" in wx.text(people.stranger, "我的问题")
    wx.text(people.doctor, f"接单 {n}")
    assert "由张医生负责" in wx.text(people.housing, f"办结 {n} 抢着办")
    assert "由张医生负责" in wx.text(people.housing, f"转办 {n} 王五")
    assert "已回复" in wx.text(people.boss, f"回复 {n} 主管过问一下")  # supervisors may
    assert "转给王五" in wx.text(people.boss, f"转办 {n} 王五")
    assert f"赵主任已把{n}号问题（王建国）转给王五办理，您不用再跟进了" in \
        sent(app, people.doctor)[-1]
    assert "现在由您办理" in wx.text(people.boss, f"转办 {n} 赵主任")  # takes it over
    assert ticket_row(app, n)["assignee"] == "赵主任"
    with db(app) as s:
        s.scalar(select(Staff).where(Staff.name == "王五")).active = False
    assert "没有权限" in wx.text(people.spare, "待办")  # deactivated staff lose the role


def test_todo_lists_urgent_and_oldest_first(wx, app, people):
    older = report(wx, people.cadre, category="2", text="门锁坏了")
    urgent = report(wx, people.cadre, category="1", text="摔了一跤", urgency="2")
    newer = report(wx, people.cadre, category="6", text="想咨询政策")
    wx.text(people.housing, f"接单 {older}")
    done = report(wx, people.cadre, category="3", text="工资没到账")
    wx.text(people.doctor, f"办结 {done} 已到账")
    todo = wx.text(people.housing, "待办")
    lines = [line for line in todo.splitlines() if "｜" in line]
    assert [int(line.split("号")[0]) for line in lines] == [urgent, older, newer]
    assert "我在办" in lines[1] and "待接单" in lines[0] and "已等0分钟" in lines[0]


def test_detail_shows_history_contact_and_reachability(wx, app, people):
    n = report(wx, people.family, category="1", text="血压高")
    wx.text(people.doctor, f"接单 {n}")
    wx.text(people.doctor, f"回复 {n} 稍后电话联系")
    detail = wx.text(people.doctor, f"详情 {n}")
    assert "王建国（13800001001，幸福社区）家属代为反映" in detail and "住址：幸福路1号" in detail
    assert "家属（代王建国） 反映问题，通知了张医生" in detail
    assert "张医生 接单" in detail and "张医生 回复：稍后电话联系" in detail
    assert re.search(r"可直接聊天送达，到\d+月\d+日 \d\d:\d\d（还剩(1天23小时|2天)", detail)
    assert detail.count("\n") > 6


# ---- SLA and digest by time travel -------------------------------------------------------
def test_sla_renotify_escalate_once_each(app, people):
    with time_machine.travel(MONDAY_9, tick=False):
        n = report(_wx(app), people.cadre, category="2")
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=29)) == 0
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=31)) == 1
    assert "已经31分钟没人接单了" in sent(app, people.housing)[-1]
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=36)) == 0  # no double ping
    assert sent(app, people.boss) == []
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=121)) == 1
    assert "上报主管" in sent(app, people.boss)[-1]
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=200)) == 0
    assert len(sent(app, people.boss)) == 1 and len(sent(app, people.housing)) == 2
    t = ticket_row(app, n)
    assert t["events"] == ["created", "sla_renotify", "sla_escalate"]
    assert "系统 超时未接单，上报主管赵主任" in _detail(app, people, n)


def _detail(app, people, n):
    return _wx(app).text(people.doctor, f"详情 {n}")


def test_sla_urgent_is_faster_and_clock_stops_outside_working_hours(app, people):
    friday_evening = datetime(2026, 3, 6, 17, 20, tzinfo=TZ)
    with time_machine.travel(MONDAY_9, tick=False):
        urgent = report(_wx(app), people.cadre, category="1", urgency="2")
    with time_machine.travel(friday_evening, tick=False):
        late = report(_wx(app), people.cadre, category="2")
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=11)) == 1
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(minutes=31)) == 1
    assert ticket_row(app, urgent)["events"][-1] == "sla_escalate"
    # 10 minutes on Friday, the other 20 on Monday from 08:30: due Monday 08:50.
    assert run(app, "sla_escalation", datetime(2026, 3, 8, 23, 0, tzinfo=TZ)) == 0
    assert run(app, "sla_escalation", datetime(2026, 3, 9, 8, 49, tzinfo=TZ)) == 0
    assert run(app, "sla_escalation", datetime(2026, 3, 9, 8, 51, tzinfo=TZ)) == 1
    assert ticket_row(app, late)["events"] == ["created", "sla_renotify"]


def test_sla_reminds_a_silent_assignee_after_a_working_day(app, people):
    wx = _wx(app)
    with time_machine.travel(MONDAY_9, tick=False):
        n = report(wx, people.cadre, category="2")
        wx.text(people.housing, f"接单 {n}")
    assert run(app, "sla_escalation", MONDAY_9 + timedelta(hours=8)) == 0  # 17:00: 6.5 h
    tuesday = datetime(2026, 3, 3, 9, 1, tzinfo=TZ)
    assert run(app, "sla_escalation", tuesday) == 1
    assert "接单已经超过一个工作日，还没有回复" in sent(app, people.housing)[-1]
    assert run(app, "sla_escalation", tuesday + timedelta(hours=3)) == 0
    # A transfer starts a new round; a reply stops the clock.
    with time_machine.travel(tuesday, tick=False):
        wx.text(people.housing, f"转办 {n} 王五")
        wx.text(people.spare, f"回复 {n} 收到，我来办")
    assert run(app, "sla_escalation", tuesday + timedelta(days=3)) == 0
    assert ticket_row(app, n)["events"].count("sla_remind") == 1


def test_staff_digest_each_staff_gets_their_tickets_once(app, people):
    wx = _wx(app)
    with time_machine.travel(MONDAY_9, tick=False):
        mine = report(wx, people.cadre, category="2", text="门锁坏了")
        free = report(wx, people.cadre, category="1", text="想换家庭医生")
        wx.text(people.housing, f"接单 {mine}")
    tuesday = datetime(2026, 3, 3, 8, 30, tzinfo=TZ)
    assert run(app, "staff_digest", tuesday) == 4
    digest = sent(app, people.housing)[-1]
    assert "您在办理（1件）" in digest and f"{mine}号 住房｜王建国｜已等23小时30分" in digest
    assert "还没人接单（1件）" in digest and f"{free}号 医疗就医" in digest
    assert f"{mine}号" not in sent(app, people.doctor)[-1].split("还没人接单")[1]
    assert run(app, "staff_digest", tuesday) == 0  # rerun: nothing sent twice
    assert run(app, "staff_digest", datetime(2026, 3, 7, 8, 30, tzinfo=TZ)) == 0  # Saturday


def test_jobs_are_exposed_with_their_triggers():
    triggers = {j.name: j.trigger for j in issue_jobs}
    assert triggers == {"sla_escalation": {"trigger": "interval", "minutes": 5},
                        "staff_digest": {"trigger": "cron", "hour": 8, "minute": 30},
                        "media_sweep": {"trigger": "interval", "minutes": 1}}


# ---- nothing is deleted --------------------------------------------------------------------
def test_every_change_is_an_event_and_rows_survive(wx, app, people):
    n = report(wx, people.cadre)
    wx.text(people.doctor, f"接单 {n}")
    wx.text(people.doctor, f"办结 {n} 好了")
    wx.text(people.doctor, f"重开 {n}")
    wx.text(people.doctor, f"办结 {n} 这回真好了")
    with db(app) as s:
        events = s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == n)
                           .order_by(TicketEvent.id)).all()
        assert [e.kind for e in events] == ["created", "claimed", "resolved", "reopened",
                                            "resolved"]
        assert all(e.at is not None and e.actor_role for e in events)
        assert [e.text for e in events if e.kind == "resolved"] == ["好了", "这回真好了"]
        assert s.scalar(select(func.count(TicketAttachment.id))) == 0


def test_jobs_run_command_travels_in_time(app, people):
    with time_machine.travel(MONDAY_9, tick=False):
        report(_wx(app), people.cadre, category="2")
    result = app.test_cli_runner().invoke(
        args=["jobs", "run", "sla_escalation", "--now", "2026-03-02T09:31"])
    assert result.exit_code == 0, result.output
    assert "sla_escalation: 1" in result.output
    assert "没人接单" in sent(app, people.housing)[-1]


# ---- units: references, working hours, the configuration file --------------------------------
@pytest.mark.parametrize("args, expected", [
    ("12 您好", (12, "您好")), ("12，您好。", (12, "您好。")), ("１２号 您好", (12, "您好")),
    ("十二", (12, "")), ("12", (12, "")), ("12号楼漏水", (None, "12号楼漏水")),
    ("12 号楼漏水", (None, "12 号楼漏水")), ("3点前到", (None, "3点前到")),
    ("一会儿就到", (None, "一会儿就到")), ("", (None, "")),
])
def test_parse_ref(args, expected):
    assert parse_ref(args) == expected


def _policy(**hours):
    raw = yaml.safe_load(CONFIG)
    raw["working_hours"].update(hours)
    return parse_policy(raw, TZ)


def at(day, hh, mm):
    return datetime(2026, 3, day, hh, mm, tzinfo=TZ)


def test_working_minutes_skip_lunch_nights_weekends_holidays_and_count_makeup_days():
    policy = _policy()
    assert policy.working_day_minutes == 450
    assert policy.add_working_minutes(at(2, 11, 50), 30) == at(2, 13, 50)   # over lunch
    assert policy.add_working_minutes(at(6, 17, 20), 30) == at(9, 8, 50)    # over a weekend
    assert policy.add_working_minutes(at(7, 10, 0), 10) == at(9, 8, 40)     # from Saturday
    assert policy.add_working_minutes(at(2, 7, 0), 450) == at(2, 17, 30)    # one working day
    holiday = _policy(holidays=["2026-03-09"])
    assert holiday.add_working_minutes(at(6, 17, 20), 30) == at(10, 8, 50)
    makeup = _policy(extra_workdays=["2026-03-08"])
    assert makeup.add_working_minutes(at(6, 17, 20), 30) == at(8, 8, 50)


def test_default_configuration_has_the_six_categories_and_the_spec_numbers():
    policy = parse_policy(yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8")), TZ)
    assert [c.name for c in policy.categories] == ["医疗就医", "住房", "待遇保障", "供暖水电",
                                                   "生活照料", "其他"]
    assert (policy.normal.renotify, policy.normal.escalate) == (30, 120)
    assert (policy.urgent.renotify, policy.urgent.escalate) == (10, 30)


@pytest.mark.parametrize("raw, message", [
    ({"categories": []}, "categories is empty"),
    ({"categories": [{"key": "a", "name": "甲"}, {"key": "a", "name": "乙"}]}, "used twice"),
    ({"categories": [{"key": "a", "name": "甲"}], "working_hours": {"hours": ["9-17"]}},
     "is not like"),
])
def test_bad_configuration_says_what_is_wrong(raw, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(raw, TZ)


def test_a_double_tapped_confirm_makes_one_ticket(app, people):
    """Two `1`s sent at once (different MsgIds) run one after the other: one ticket."""
    wx = _wx(app)
    assert "哪方面的问题" in wx.text(people.cadre, "反映问题")
    wx.text(people.cadre, "1")
    wx.text(people.cadre, "家里暖气不热")
    assert "请核对" in wx.text(people.cadre, "1")
    barrier, replies = threading.Barrier(2), []

    def confirm():
        mine = _wx(app)
        barrier.wait()
        replies.append(mine.text(people.cadre, "1"))

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db(app) as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
    assert sorted("已提交" in r for r in replies) == [False, True]
    assert any("哪方面的问题" in r for r in replies)  # the second `1` is a menu choice


def test_with_redis_down_a_report_still_goes_through(app, people, cut_redis):
    """Dialog state falls back to the database: the whole report dialog works without Redis."""
    cut_redis(app)
    n = report(_wx(app), people.cadre, text="暖气一直不热，家里很冷")
    t = ticket_row(app, n)
    assert t["description"] == "暖气一直不热，家里很冷" and t["events"] == ["created"]


def test_the_rating_question_waits_a_day_for_the_reporters_next_message(app, people):
    """A push read hours later: the question outlives the 10-minute dialog timeout, and
    lives beside any dialog (it is kept on the follower, not in the dialog state)."""
    wx = _wx(app)
    n = report(wx, people.cadre)
    wx.text(people.doctor, f"办结 {n} 已电话指导用药")
    with db(app) as s:
        f = s.scalar(select(Follower).where(Follower.openid == people.cadre))
        assert f.rating_ticket_id == n
        assert timedelta(hours=23) < f.rating_until - utcnow() <= timedelta(hours=24)
        f.rating_until = utcnow() + timedelta(minutes=30)  # 23 and a half hours later
    assert "谢谢您的评价" in wx.text(people.cadre, "4")
    assert ticket_row(app, n)["rating"] == 4
