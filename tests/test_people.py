"""Binding (self and family), unbinding, locks, action log, group admins, follow/unfollow."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import roles
from models import Binding, Cadre, Follower, utcnow
from models.groups import BroadcastGroup, GroupMember
from models.people import ActionLog, BindAttempt, recipients_of
from tests.conftest import db, oid, roles_of


@pytest.fixture
def roster(app):
    """Two homonyms 张三 (digits 1234 / 5678) and 李四 (0007); returns {label: cadre id}."""
    with db(app) as s:
        rows = {"zhang1": Cadre(name="张三", phone="13900001234"),
                "zhang2": Cadre(name="张三", phone="13700005678"),
                "li": Cadre(name="李四", phone="13600000007")}
        s.add_all(rows.values())
        s.flush()
        return {k: c.id for k, c in rows.items()}


def bindings(app, openid):
    with db(app) as s:
        return [(b.cadre_id, b.relation) for b in
                s.scalars(select(Binding).where(Binding.openid == openid))]


# ---- binding -------------------------------------------------------------------------------
def test_one_shot_bind_tells_homonyms_apart_by_digits(app, wx, roster):
    a, b = oid(), oid()
    assert "绑定成功" in wx.text(a, "绑定 张三 5678")
    assert "绑定成功" in wx.text(b, "绑定　张三，1234。")
    assert bindings(app, a) == [(roster["zhang2"], "self")]
    assert bindings(app, b) == [(roster["zhang1"], "self")]
    assert roles.CADRE in roles_of(app, a)


def test_bind_dialog_asks_name_then_digits(app, wx, openid, roster):
    assert "姓名" in wx.text(openid, "绑定")
    assert "后四位" in wx.text(openid, "李四")
    assert "后四位" in wx.text(openid, "12ab")  # not four digits: asked again, not a try
    reply = wx.text(openid, "０００７")
    assert "绑定成功" in reply and "李四同志" in reply  # people read their own name in full
    assert bindings(app, openid) == [(roster["li"], "self")]


def test_menu_number_starts_binding_for_unbound_and_hides_it_once_bound(app, wx, openid,
                                                                       roster):
    menu = wx.text(openid, "菜单")
    assert "绑定身份" in menu and "家属绑定" in menu and "人工服务" in menu
    wx.text(openid, "绑定 李四 0007")
    menu = wx.text(openid, "菜单")
    assert "绑定身份" not in menu and "家属绑定" not in menu


def test_three_wrong_tries_lock_binding_for_an_hour(app, wx, openid, roster):
    assert "还可以再试 2 次" in wx.text(openid, "绑定 张三 0000")
    wx.text(openid, "绑定")
    wx.text(openid, "王五")
    assert "还可以再试 1 次" in wx.text(openid, "1234")
    assert "暂停" in wx.text(openid, "家属绑定 张三 9999")
    # even the right answer is refused while locked, and the lock is in the database
    assert "暂停" in wx.text(openid, "绑定 张三 1234")
    assert bindings(app, openid) == []
    with db(app) as s:
        attempt = s.scalar(select(BindAttempt).where(BindAttempt.openid == openid))
        assert attempt.locked_until > utcnow() + timedelta(minutes=55)
        attempt.locked_until = utcnow() - timedelta(seconds=1)  # an hour later
    assert "绑定成功" in wx.text(openid, "绑定 张三 1234")


def test_already_bound_is_told_who_and_how_to_change(app, wx, openid, roster):
    wx.text(openid, "绑定 张三 1234")
    reply = wx.text(openid, "绑定")
    assert "张三同志" in reply and "解绑" in reply
    assert "张三" in wx.text(openid, "绑定 李四 0007")  # one own binding per account
    assert bindings(app, openid) == [(roster["zhang1"], "self")]


def test_cadre_already_bound_elsewhere_is_refused(app, wx, roster):
    wx.text(oid(), "绑定 李四 0007")
    other = oid()
    assert "另一个微信" in wx.text(other, "绑定 李四 0007")
    assert bindings(app, other) == []


def test_staff_free_a_binding_held_by_an_old_account(app, wx, roster):
    old, new, kid = oid(), oid(), oid()
    wx.text(old, "绑定 李四 0007")
    wx.text(kid, "家属绑定 李四 0007")
    runner = app.test_cli_runner()
    freed = runner.invoke(args=["roster", "unbind", "13600000007"])
    assert freed.exit_code == 0 and "1 self binding(s) removed" in freed.output
    assert bindings(app, old) == [] and bindings(app, kid) == [(roster["li"], "family")]
    assert "李四同志" in wx.text(new, "绑定 李四 0007")
    assert bindings(app, new) == [(roster["li"], "self")]
    again = runner.invoke(args=["roster", "unbind", "13600000007", "--family"])
    assert again.exit_code == 0 and bindings(app, kid) == []
    assert runner.invoke(args=["roster", "unbind", "13600000007", "--family"]).exit_code != 0
    assert "no cadre" in runner.invoke(args=["roster", "unbind", "13000000000"]).output
    with db(app) as s:
        actions = s.scalars(select(ActionLog.action).where(
            ActionLog.cadre_id == roster["li"]).order_by(ActionLog.id)).all()
    assert actions.count("unbind.self") == 1 and actions.count("unbind.family") == 1


def test_unbind_asks_for_confirmation_and_logs(app, wx, openid, roster):
    wx.text(openid, "绑定 李四 0007")
    assert "回复 1 确认" in wx.text(openid, "解绑")
    assert "已取消" in wx.text(openid, "0") or bindings(app, openid)
    assert bindings(app, openid) == [(roster["li"], "self")]
    wx.text(openid, "解绑")
    assert "已解除绑定" in wx.text(openid, "1")
    assert bindings(app, openid) == []
    assert roles.CADRE not in roles_of(app, openid)
    with db(app) as s:
        actions = [(a.action, a.cadre_id, a.on_behalf) for a in
                   s.scalars(select(ActionLog).where(ActionLog.openid == openid)
                             .order_by(ActionLog.id))]
    assert actions == [("bind.self", roster["li"], False), ("unbind.self", roster["li"], False)]
    assert "还没有绑定" in wx.text(openid, "解绑")


# ---- family --------------------------------------------------------------------------------
def test_several_family_members_act_for_the_cadre(app, wx, roster):
    cadre, kid1, kid2 = oid("cadre"), oid("kid"), oid("kid")
    wx.text(cadre, "绑定 张三 1234")
    assert "作为家属绑定" in wx.text(kid1, "家属绑定 张三 1234")
    wx.text(kid2, "家属绑定")
    wx.text(kid2, "张三")
    assert "绑定成功" in wx.text(kid2, "1234")
    for kid in (kid1, kid2):
        assert bindings(app, kid) == [(roster["zhang1"], "family")]
        assert {roles.CADRE, roles.FAMILY} <= roles_of(app, kid)
    with db(app) as s:
        assert recipients_of(s, roster["zhang1"]) == [cadre, kid1, kid2]
        logged = s.scalars(select(ActionLog).where(ActionLog.openid == kid1)).one()
        assert (logged.action, logged.on_behalf, logged.cadre_id) == \
            ("bind.family", True, roster["zhang1"])
    assert any("家属" in body for body in wx.pushes(cadre))


def test_ctx_cadre_of_a_family_member_is_the_cadre(app, wx, roster):
    from handlers.people.service import record_action

    kid = oid("kid")
    wx.text(kid, "家属绑定 李四 0007")

    class FakeCtx:
        openid, now = kid, utcnow()

    with db(app) as s:
        binding = s.scalars(select(Binding).where(Binding.openid == kid)).one()
        ctx = FakeCtx()
        ctx.cadre, ctx.on_behalf = binding.cadre, binding.relation == "family"
        entry = record_action(s, "test.action", ctx)
        assert (entry.cadre_id, entry.on_behalf, entry.openid) == (roster["li"], True, kid)


# ---- logs ----------------------------------------------------------------------------------
def test_binding_logs_never_hold_full_name_or_phone(app, wx, openid, roster, caplog):
    caplog.set_level(logging.DEBUG)
    wx.text(openid, "绑定 张三 0000")
    wx.text(openid, "绑定")
    wx.text(openid, "张三")
    wx.text(openid, "1234")
    wx.text(oid(), "家属绑定 张三 1234")
    wx.text(openid, "人工")
    assert bindings(app, openid)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "13900001234" not in text
    assert "张三" not in text


# ---- group admins --------------------------------------------------------------------------
def test_group_admin_role_for_bound_admins_only(app, wx, roster):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["group", "create", "合唱团", "--admin", "13900001234",
                                 "--admin", "19900000000"])
    assert result.exit_code == 0, result.output
    assert "not in the roster: 19900000000" in result.output
    result = runner.invoke(args=["group", "add", "13600000007", "13700005678",
                                 "--group", "合唱团"])
    assert result.exit_code == 0 and "2 member(s) added" in result.output
    assert runner.invoke(args=["group", "add", "13600000007", "--group", "无"]).exit_code != 0
    admin, member, kid = oid(), oid(), oid()
    wx.text(admin, "绑定 张三 1234")
    wx.text(member, "绑定 李四 0007")
    wx.text(kid, "家属绑定 张三 1234")
    assert roles.GROUP_ADMIN in roles_of(app, admin)
    assert roles.GROUP_ADMIN not in roles_of(app, member)
    assert roles.GROUP_ADMIN not in roles_of(app, kid)
    with db(app) as s:
        group = s.scalar(select(BroadcastGroup).where(BroadcastGroup.name == "合唱团"))
        members = s.scalars(select(GroupMember).where(GroupMember.group_id == group.id)).all()
        assert sorted((m.cadre_id, m.is_admin) for m in members) == sorted(
            [(roster["zhang1"], True), (roster["li"], False), (roster["zhang2"], False)])
    # re-running create adds nothing twice
    assert runner.invoke(args=["group", "create", "合唱团", "--admin",
                               "13900001234"]).exit_code == 0


# ---- follow / unfollow ---------------------------------------------------------------------
def follower(app, openid):
    with db(app) as s:
        f = s.scalar(select(Follower).where(Follower.openid == openid))
        return f.subscribed, f.scene


def test_unsubscribe_keeps_data_and_resubscribe_restores(app, wx, openid, roster):
    wx.text(openid, "绑定 张三 1234")
    kid = oid("kid")
    wx.text(kid, "家属绑定 张三 1234")
    assert wx.event(openid, "unsubscribe") is None
    assert follower(app, openid)[0] is False
    assert bindings(app, openid) == [(roster["zhang1"], "self")]  # nothing deleted
    with db(app) as s:
        assert recipients_of(s, roster["zhang1"]) == [kid]
    assert "请回复数字选择" in wx.event(openid, "subscribe")
    assert follower(app, openid)[0] is True
    with db(app) as s:
        assert recipients_of(s, roster["zhang1"]) == [openid, kid]


def test_subscribe_from_a_qr_scene_records_the_scene(app, wx, openid):
    wx.event(openid, "subscribe", "qrscene_community-7", Ticket="t1")
    assert follower(app, openid) == (True, "community-7")
