"""Staff invites, list/remove, duty, and 人工 reaching on-duty staff (or supervisors)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot import roles
from models import Cadre, Staff, StaffInvite, utcnow
from tests.conftest import db, oid, roles_of, sent


def invite(app, name, *extra):
    result = app.test_cli_runner().invoke(args=["staff", "invite", name, *extra])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def staff_rows(app):
    with db(app) as s:
        return {st.name: (st.openid, st.role, st.on_duty, st.active)
                for st in s.scalars(select(Staff))}


def test_invite_code_is_alone_on_the_last_line_and_works_once(app, wx):
    code = invite(app, "赵敏", "--role", "supervisor")
    assert code.isalnum() and " " not in code
    first, second = oid("staff"), oid("staff")
    assert "赵敏" in wx.text(first, f"工作人员 {code.lower()}")
    assert staff_rows(app)["赵敏"] == (first, "supervisor", False, True)
    assert {roles.STAFF, roles.SUPERVISOR} <= roles_of(app, first)
    assert "已经用过" in wx.text(second, f"工作人员 {code}")
    assert "邀请码不对" in wx.text(second, "工作人员 NOPE1234")
    assert roles.STAFF not in roles_of(app, second)


def test_expired_invite_is_refused(app, wx, openid):
    code = invite(app, "钱多")
    with db(app) as s:
        s.scalar(select(StaffInvite).where(StaffInvite.code == code)).expires_at = \
            utcnow() - timedelta(minutes=1)
    assert "过期" in wx.text(openid, f"工作人员 {code}")
    assert "钱多" not in staff_rows(app)


def test_list_and_remove_keep_the_row(app, wx, openid):
    wx.text(openid, f"工作人员 {invite(app, '孙丽')}")
    runner = app.test_cli_runner()
    assert "孙丽\tstaff" in runner.invoke(args=["staff", "list"]).output
    assert runner.invoke(args=["staff", "remove", "孙丽"]).exit_code == 0
    assert staff_rows(app)["孙丽"][3] is False
    assert roles.STAFF not in roles_of(app, openid)
    assert runner.invoke(args=["staff", "remove", "孙丽"]).exit_code != 0
    assert "removed" in runner.invoke(args=["staff", "list"]).output


def test_duty_commands_are_for_staff_only(app, wx, openid):
    assert "没有权限" in wx.text(oid(), "值班")
    wx.text(openid, f"工作人员 {invite(app, '周正')}")
    menu = wx.text(openid, "菜单")
    assert "开始值班" in menu and "结束值班" not in menu  # the menu offers the other state
    assert "绑定身份" not in menu and "人工服务" not in menu and "回复“人工”" not in menu
    assert "已开始值班" in wx.text(openid, "值班")
    assert staff_rows(app)["周正"][2] is True
    menu = wx.text(openid, "菜单")
    assert "结束值班" in menu and "开始值班" not in menu
    assert "已下班" in wx.text(openid, "下班")
    assert staff_rows(app)["周正"][2] is False


def asked(wx, staff, wait=3.0):
    """What staff received about 人工 requests (new-binding notices left out)."""
    return [p for p in wx.pushes(staff, wait=wait) if "【新绑定】" not in p]


def test_human_reaches_on_duty_staff_with_masked_identity_and_recent_texts(app, wx):
    duty, boss, user = oid("duty"), oid("boss"), oid("user")
    wx.text(duty, f"工作人员 {invite(app, '吴值班')}")
    wx.text(boss, f"工作人员 {invite(app, '郑主任', '--role', 'supervisor')}")
    wx.text(duty, "值班")
    with db(app) as s:
        s.add(Cadre(name="张三丰", phone="13900001234"))
    wx.text(user, "绑定 张三丰 1234")
    for words in ("家里暖气不热", "问了物业也不管", "怎么办"):
        wx.text(user, words)
    assert "会尽快回复" in wx.text(user, "人工")
    [body] = asked(wx, duty)
    assert "张**" in body and "139****1234" in body
    assert "13900001234" not in body and "张三丰" not in body
    assert body.index("家里暖气不热") < body.index("问了物业也不管") < body.index("怎么办")
    assert "人工" not in body.split("最近的消息")[1]
    assert asked(wx, boss, wait=0.2) == []


def test_human_falls_back_to_supervisors_and_works_unbound(app, wx):
    boss, stranger = oid("boss"), oid("stranger")
    wx.text(boss, f"工作人员 {invite(app, '郑主任', '--role', 'supervisor')}")
    wx.text(stranger, "你好")
    assert "会尽快回复" in wx.text(stranger, "人工")
    [body] = asked(wx, boss)
    assert stranger in body and "未绑定" in body


def test_staff_answer_a_human_request_in_chat_and_follow_ups_reach_them(app, wx):
    import re

    duty, other, user = oid("duty"), oid("other"), oid("user")
    wx.text(duty, f"工作人员 {invite(app, '吴值班')}")
    wx.text(other, f"工作人员 {invite(app, '王值班')}")
    wx.text(duty, "值班")
    wx.text(other, "值班")
    with db(app) as s:
        s.add(Cadre(name="李四海", phone="13900005678"))
    wx.text(user, "绑定 李四海 5678")
    wx.text(user, "人工")
    [body] = asked(wx, duty)
    assert len(asked(wx, other)) == 1
    number = int(re.search(r"第(\d+)号", body).group(1))
    assert f"答复 {number}" in body
    answered = wx.text(duty, f"答复 {number} 您好，我们下午三点给您打电话")
    assert "已答复" in answered and "李**" in answered
    [relayed] = wx.pushes(user)
    assert "吴值班" in relayed and "下午三点给您打电话" in relayed
    # The follow-up goes to the staff member who answered, with what the user said.
    assert "刚才答复您的工作人员" in wx.text(user, "人工 我下午在家")
    follow = asked(wx, duty)
    assert len(follow) == 2 and "我下午在家" in follow[1] and "又找您了" in follow[1]
    assert len(asked(wx, other, wait=0.2)) == 1
    # A second staff member answering the same request is told who answered before.
    assert "吴值班此前也答复过" in wx.text(other, f"答复{number}：我也看看")


def test_answer_needs_staff_a_known_number_and_words(app, wx):
    duty, user = oid("duty"), oid("user")
    wx.text(duty, f"工作人员 {invite(app, '吴值班')}")
    assert "没有权限" in wx.text(user, "答复 1 你好")
    assert "答复 编号 内容" in wx.text(duty, "答复")
    assert "答复 编号 内容" in wx.text(duty, "答复 3")
    assert "没有第999号" in wx.text(duty, "答复 999 你好")
    assert sent(app, user) == []   # pushes commit with the message: none was queued
