"""Binding cannot be guessed: per-account and per-cadre limits, one own binding per cadre
(a database rule, also under a race), several cadres per account, and every new binding
announced with a one-word undo (issue 12, items 1, 2 and 2b)."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Binding, Cadre, Staff, utcnow
from models.people import BindAttempt, BindGuard
from tests.conftest import db, oid


@pytest.fixture
def roster(app):
    """李四 (0007), 王五 (0008) and an on-duty staff member; returns {label: id/openid}."""
    with db(app) as s:
        li, wang = Cadre(name="李四", phone="13600000007"), Cadre(name="王五", phone="13600000008")
        staff = Staff(name="赵敏", openid=oid("staff"), role="staff", on_duty=True)
        s.add_all([li, wang, staff])
        s.flush()
        return {"li": li.id, "wang": wang.id, "staff": staff.openid}


def bindings(app, openid):
    with db(app) as s:
        return sorted((b.cadre_id, b.relation) for b in
                      s.scalars(select(Binding).where(Binding.openid == openid)))


def unlock_account(app, openid):
    """An hour passes for this account's own lock (the cadre's count is untouched)."""
    with db(app) as s:
        attempt = s.scalar(select(BindAttempt).where(BindAttempt.openid == openid))
        if attempt is not None and attempt.locked_until:
            attempt.locked_until = utcnow() - timedelta(seconds=1)


# ---- item 1: no brute force ----------------------------------------------------------------
def test_binding_someone_else_does_not_reset_the_count(app, wx, roster):
    attacker = oid("attacker")
    assert "还可以再试 2 次" in wx.text(attacker, "家属绑定 李四 1111")
    assert "还可以再试 1 次" in wx.text(attacker, "家属绑定 李四 2222")
    assert "绑定成功" in wx.text(attacker, "家属绑定 王五 0008")  # a cadre it knows
    wx.text(attacker, "解绑")
    wx.text(attacker, "1")
    reply = wx.text(attacker, "家属绑定 李四 3333")
    assert "暂停" in reply and "还可以再试" not in reply
    assert "暂停" in wx.text(attacker, "家属绑定 李四 0007")  # even the right digits
    assert (roster["li"], "family") not in bindings(app, attacker)


def test_wrong_tries_against_one_cadre_are_counted_across_accounts(app, wx, roster):
    guesses = iter(range(1000, 1100))
    for _ in range(9):  # nine fresh accounts, one wrong guess each
        assert "还可以再试 2 次" in wx.text(oid("bot"), f"绑定 李四 {next(guesses)}")
    tenth = wx.text(oid("bot"), f"绑定 李四 {next(guesses)}")
    assert "暂停" in tenth and "人工" in tenth
    # the right digits from yet another account are refused now, and counted nowhere
    fresh = oid("late")
    assert "人工" in wx.text(fresh, "绑定 李四 0007")
    assert bindings(app, fresh) == []
    staff_pushes = wx.pushes(roster["staff"])
    paused = [p for p in staff_pushes if "绑定暂停" in p]
    assert len(paused) == 1 and "解除暂停 13600000007" in paused[0]
    # binding to another cadre is not affected
    assert "绑定成功" in wx.text(oid(), "绑定 王五 0008")


def test_staff_lift_the_pause_in_chat_and_by_cli(app, wx, roster):
    with db(app) as s:
        s.add(BindGuard(cadre_id=roster["li"], day=utcnow().date(), failures=10,
                        paused_at=utcnow()))
    cadre = oid("cadre")
    assert "暂停" in wx.text(cadre, "绑定 李四 0007")
    assert "没有权限" in wx.text(cadre, "解除暂停 13600000007")  # not staff
    assert "已恢复" in wx.text(roster["staff"], "李四那个绑定被锁了，给他放开")  # by name
    assert "没有被暂停" in wx.text(roster["staff"], "解除暂停 13600000007")
    assert "绑定成功" in wx.text(cadre, "绑定 李四 0007")
    with db(app) as s:
        guard = s.scalar(select(BindGuard).where(BindGuard.cadre_id == roster["li"]))
        guard.paused_at = utcnow()
    runner = app.test_cli_runner()
    out = runner.invoke(args=["roster", "unlock", "13600000007"])
    assert out.exit_code == 0 and "pause lifted" in out.output
    assert "was not paused" in runner.invoke(args=["roster", "unlock", "13600000007"]).output
    assert runner.invoke(args=["roster", "unlock", "13000000000"]).exit_code != 0


def test_the_daily_count_starts_again_the_next_day(app, wx, roster):
    with db(app) as s:
        s.add(BindGuard(cadre_id=roster["li"], day=utcnow().date() - timedelta(days=1),
                        failures=9))
    assert "还可以再试 2 次" in wx.text(oid(), "绑定 李四 1234")
    with db(app) as s:
        guard = s.scalar(select(BindGuard).where(BindGuard.cadre_id == roster["li"]))
        assert guard.failures == 1 and guard.paused_at is None


# ---- item 2: one own binding per cadre, several cadres per account -----------------------
def test_the_database_refuses_a_second_own_binding(app, roster):
    from sqlalchemy.exc import IntegrityError

    with db(app) as s:
        s.add(Binding(openid=oid(), cadre_id=roster["li"], relation="self"))
    with pytest.raises(IntegrityError):
        with db(app) as s:
            s.add(Binding(openid=oid(), cadre_id=roster["li"], relation="self"))
    with db(app) as s:  # family bindings are not limited
        s.add(Binding(openid=oid(), cadre_id=roster["li"], relation="family"))
        s.add(Binding(openid=oid(), cadre_id=roster["li"], relation="family"))


def test_six_accounts_binding_one_cadre_at_once_one_wins(make_app, roster):
    from tests.wx import WeChat

    apps = [make_app() for _ in range(6)]
    accounts = [oid(f"race{i}") for i in range(6)]
    barrier, replies = threading.Barrier(6), {}

    def go(i):
        wx = WeChat(apps[i])
        barrier.wait()
        replies[i] = wx.text(accounts[i], "绑定 李四 0007")

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum("绑定成功" in r for r in replies.values()) == 1, replies
    assert sum("另一个微信" in r for r in replies.values()) == 5, replies
    with db(apps[0]) as s:
        own = s.scalars(select(Binding).where(Binding.cadre_id == roster["li"])).all()
    assert len(own) == 1 and own[0].openid in accounts


def test_one_account_acts_for_both_parents(app, wx, roster):
    child = oid("child")
    assert "绑定成功" in wx.text(child, "家属绑定 李四 0007")
    assert "绑定成功" in wx.text(child, "家属绑定 王五 0008")
    assert bindings(app, child) == sorted([(roster["li"], "family"), (roster["wang"], "family")])
    assert "已" in wx.text(child, "家属绑定 王五 0008")  # the same cadre twice: told, not a try
    assert bindings(app, child) == sorted([(roster["li"], "family"), (roster["wang"], "family")])


def test_a_couple_on_one_phone(app, wx, roster):
    phone = oid("couple")
    assert "绑定成功" in wx.text(phone, "绑定 李四 0007")
    assert "李四" in wx.text(phone, "绑定 王五 0008")  # one own binding per account
    assert "绑定成功" in wx.text(phone, "家属绑定 王五 0008")
    assert bindings(app, phone) == sorted([(roster["li"], "self"), (roster["wang"], "family")])


# ---- item 2b: a right guess is not silent --------------------------------------------------
def test_a_new_binding_is_announced_and_undone_with_one_word(app, wx, roster):
    cadre, neighbour = oid("cadre"), oid("neighbour")
    wx.text(cadre, "绑定 李四 0007")
    assert any("【新绑定】" in p for p in wx.pushes(roster["staff"]))
    assert "绑定成功" in wx.text(neighbour, "家属绑定 李四 0007")
    announced = [p for p in wx.pushes(cadre) if "不是我" in p]
    assert len(announced) == 1 and "李四" in announced[0]
    assert "撤销" in wx.text(cadre, "不是我")
    assert bindings(app, neighbour) == []
    assert any("撤销" in p for p in wx.pushes(neighbour))
    assert any("【绑定撤销】" in p and "李*" in p for p in wx.pushes(roster["staff"]))
    assert "没有需要撤销" in wx.text(cadre, "不是我")  # once only


def test_the_undo_reaches_only_the_binding_announced_to_that_account(app, wx, roster):
    cadre, kid, stranger = oid("cadre"), oid("kid"), oid("stranger")
    wx.text(cadre, "绑定 李四 0007")
    wx.text(kid, "家属绑定 李四 0007")
    assert "没有需要撤销" in wx.text(stranger, "不是我")
    assert "没有需要撤销" in wx.text(kid, "撤销")  # the kid was told of no later binding
    assert bindings(app, kid) == [(roster["li"], "family")]


# ---- item 10: a dialog step checks its role like a command --------------------------------
def test_unbound_by_an_operator_mid_dialog_the_next_step_is_refused_not_a_crash(app, wx,
                                                                                roster):
    cadre = oid("cadre")
    wx.text(cadre, "绑定 李四 0007")
    assert "哪方面的问题" in wx.text(cadre, "反映问题")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["roster", "unbind", "13600000007"]).exit_code == 0
    assert "请先绑定" in wx.text(cadre, "4")
    assert "请回复数字选择" in wx.text(cadre, "菜单")  # the dialog is over, nothing broke


def test_acting_for_both_parents_asks_whom_once_an_hour(app, wx, roster):
    child = oid("child")
    wx.text(child, "家属绑定 李四 0007")
    wx.text(child, "家属绑定 王五 0008")
    asked = wx.text(child, "反映问题")
    assert "为谁办" in asked and "1. 李四" in asked and "2. 王五" in asked
    chosen = wx.text(child, "2")
    assert "代王五反映问题" in chosen and "哪方面的问题" in chosen
    wx.text(child, "0")
    reply = wx.text(child, "我的问题")           # chosen within the hour: not asked again
    assert "为谁办" not in reply and "王五" in reply
    with db(app) as s:
        from models import Follower
        follower = s.scalar(select(Follower).where(Follower.openid == child))
        follower.acting_until = utcnow() - timedelta(seconds=1)  # an hour later
    assert "为谁办" in wx.text(child, "我的问题")
    assert "李四" in wx.text(child, "李四")         # a name answers too


# ---- binding without typing: personal QR codes (issue 11, item 7) ------------------------
def qrcodes(app, tmp_path, *phones):
    """`roster qrcodes` in sandbox mode; the scenes it issued, by phone."""
    import csv

    args = ["roster", "qrcodes", "--out", str(tmp_path / "codes")]
    for phone in phones:
        args += ["--phone", phone]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    with open(tmp_path / "codes" / "index.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert all((tmp_path / "codes" / row["文件"]).read_text().startswith("<?xml") for row in rows)
    return {row["手机号"]: row["场景"] for row in rows}


def test_a_personal_qr_code_binds_with_one_question_and_only_once(app, wx, roster, tmp_path):
    scenes = qrcodes(app, tmp_path)  # every cadre nobody is bound to as themselves
    assert set(scenes) == {"13600000007", "13600000008"}
    cadre = oid("cadre")
    asked = wx.event(cadre, "SCAN", scenes["13600000007"], Ticket="t")
    assert "李*" in asked and "1. 老同志本人" in asked
    assert "李四同志" in wx.text(cadre, "1")
    assert bindings(app, cadre) == [(roster["li"], "self")]
    assert any("【新绑定】" in p for p in wx.pushes(roster["staff"]))
    other = oid("other")
    assert "用过" in wx.event(other, "SCAN", scenes["13600000007"], Ticket="t")  # used up
    assert bindings(app, other) == []


def test_following_through_a_personal_code_binds_as_family_by_choice(app, wx, roster, tmp_path):
    scene = qrcodes(app, tmp_path, "13600000008")["13600000008"]
    kid = oid("kid")
    reply = wx.event(kid, "subscribe", f"qrscene_{scene}", Ticket="t")
    assert "欢迎" in reply and "老同志的家属" in reply
    assert "作为家属绑定王五同志" in wx.text(kid, "家属")
    assert bindings(app, kid) == [(roster["wang"], "family")]


def test_an_unknown_or_expired_code_is_refused_kindly(app, wx, roster, tmp_path):
    scene = qrcodes(app, tmp_path, "13600000007")["13600000007"]
    with db(app) as s:
        from models.people import BindCode
        code = s.scalar(select(BindCode))
        code.expires_at = utcnow() - timedelta(seconds=1)
    user = oid()
    assert "过期" in wx.event(user, "SCAN", scene, Ticket="t")
    assert "过期" in wx.event(user, "SCAN", "bind_nosuchtoken", Ticket="t")
    assert bindings(app, user) == []
