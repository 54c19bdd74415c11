"""Router and dialogs: normalisation, menus by role, commands, clicks, dialogs, long replies."""
from __future__ import annotations

import time

import pytest
import time_machine

from models import Staff
from tests import echo


def make_staff(app, openid):
    with app.extensions["yinling"].db.session() as s:
        s.add(Staff(name="赵敏", openid=openid, role="staff", on_duty=True))


@pytest.mark.parametrize("text", ["菜单", "菜　单", " 菜单！！", "帮助", "?", "？", "你好", "你好。"])
def test_menu_words_after_normalisation(ewx, openid, text):
    assert "请回复数字选择" in ewx.text(openid, text)


def menu_number(reply: str, label: str) -> str:
    line = next(l for l in reply.splitlines() if l.endswith(label))
    return line.split(".")[0]


@pytest.mark.parametrize("form", ["{n}", "{fw}", "{cn}", "第{n}项", "{n}。"])
def test_menu_number_in_any_form_starts_the_item(ewx, openid, form):
    n = int(menu_number(ewx.text(openid, "菜单"), "点菜测试"))
    cn = "零一二三四五六七八九十"[n] if n <= 10 else str(n)
    fw = "".join(chr(ord(c) + 0xFEE0) for c in str(n))
    assert "1 饺子" in ewx.text(openid, form.format(n=n, fw=fw, cn=cn))


def test_dialog_walks_through_with_chinese_numeral_and_full_width(ewx, openid):
    ewx.text(openid, "点菜")
    assert "您选了面条" in ewx.text(openid, "二")
    assert ewx.text(openid, "１") == "已下单：面条"
    assert echo.calls["order:面条"] == 1


def test_unexpected_answer_reasks_the_same_question(ewx, openid):
    ewx.text(openid, "点菜")
    reply = ewx.text(openid, "随便")
    assert "没听明白" in reply and "1 饺子 2 面条" in reply
    assert "您选了饺子" in ewx.text(openid, "1")  # the dialog was not reset


def test_a_command_that_answers_no_question_runs_instead(ewx, openid):
    """Old people change their mind: a command typed at a question is what they want now."""
    ewx.text(openid, "点菜")
    assert ewx.text(openid, "计数 x") == "计数:x"
    assert echo.calls["x"] == 1


@pytest.mark.parametrize("word", ["取消", "退出", "0", "零"])
def test_cancel_words_leave_any_dialog(ewx, openid, word):
    ewx.text(openid, "点菜")
    ewx.text(openid, "1")
    reply = ewx.text(openid, word)  # 零: `0` said aloud (voice recognition writes it so)
    assert "已取消" in reply and "请回复数字选择" in reply
    assert "已下单" not in ewx.text(openid, "1")  # the confirm step is gone
    assert not any(k.startswith("order:") for k in echo.calls)


def test_menu_always_works_inside_a_dialog(ewx, openid):
    ewx.text(openid, "点菜")
    assert "请回复数字选择" in ewx.text(openid, "菜单")
    assert "没有听明白您的意思" in ewx.text(openid, "随便")  # dialog left: not a re-ask


def test_cancel_outside_a_dialog_says_there_is_nothing_to_cancel(ewx, openid):
    assert "没有进行中的操作" in ewx.text(openid, "取消")


def test_dialog_state_expires_after_ten_minutes(ewx, openid):
    ewx.text(openid, "点菜")
    with time_machine.travel(time.time() + 590, tick=False):
        assert "1 饺子 2 面条" in ewx.text(openid, "随便")  # still in the dialog: re-asked
    with time_machine.travel(time.time() + 590 + 601, tick=False):
        assert "没有听明白您的意思" in ewx.text(openid, "随便")


def test_voice_without_recognition_inside_a_dialog_repeats_the_question(ewx, openid):
    ewx.text(openid, "点菜")
    reply = ewx.voice(openid, None)
    assert "1 饺子 2 面条" in reply


def test_voice_answers_a_dialog_step(ewx, openid):
    ewx.text(openid, "点菜")
    assert "您选了饺子" in ewx.voice(openid, "一。")


def test_staff_command_refused_for_others_and_logged(ewx, openid, caplog):
    assert "没有权限" in ewx.text(openid, "工作台")
    assert "permission denied" in caplog.text and openid in caplog.text


def test_menus_depend_on_roles(ewx, openid):
    assert "工作台" not in ewx.text(openid, "菜单")
    make_staff(ewx.app, openid)
    reply = ewx.text(openid, "菜单")
    assert "工作台" in reply
    assert ewx.text(openid, menu_number(reply, "工作台")) == "工作台已打开"


def test_click_keys_run_their_command(ewx, openid):
    assert "请回复数字选择" in ewx.click(openid, "MENU_HELP")


def test_long_reply_is_cut_on_a_character_boundary_with_more(ewx, openid):
    first = ewx.text(openid, "长文")
    assert len(first.encode("utf-8")) <= 2048
    assert first.endswith("回复‘更多’查看余下内容）")
    parts, reply = [first], first
    while reply.endswith("查看余下内容）"):
        reply = ewx.text(openid, "更多")
        assert len(reply.encode("utf-8")) <= 2048
        parts.append(reply)
    text = "\n".join(p.rsplit("\n", 1)[0] if p.endswith("内容）") else p for p in parts)
    for i in (1, 60, 120):
        assert f"第{i}行：" in text
    assert "没有更多" in ewx.text(openid, "更多")


def test_not_understood_outside_a_dialog_gets_the_menu(ewx, openid):
    reply = ewx.text(openid, "桌子椅子板凳")
    assert "没有听明白" in reply and "请回复数字选择" in reply


def test_chit_chat_gets_a_kind_line_not_the_menu(ewx, openid):
    reply = ewx.text(openid, "今天天气怎么样")
    assert "没有听明白" not in reply and "请回复数字选择" not in reply and "人工" in reply


def test_copying_reply_instruction_picks_the_menu_item_not_a_refusal(ewx, openid):
    n = menu_number(ewx.text(openid, "菜单"), "点菜测试")
    assert "1 饺子" in ewx.text(openid, f"工作台{n}")  # staff-only word + a menu number
    ewx.text(openid, "菜单")
    assert "没有权限" in ewx.text(openid, "工作台 99")
    assert "没有权限" in ewx.text(openid, "工作台 1")  # spaced: a command, not a copied reply


def test_a_refusal_is_answered_by_its_features_refusal_handler():
    """Features raise Refusal from commands; the router answers through `@handlers.refusal`."""
    from types import SimpleNamespace

    from bot.errors import Refusal
    from bot.router import Handlers, Router

    polite, plain = Handlers("polite"), Handlers("plain")

    @polite.command("借书")
    def borrow(ctx, args):
        raise Refusal("none_left", title=args)

    @polite.refusal
    def answer(ctx, refusal):
        return f"{refusal.code}:{refusal.values['title']}"

    @plain.command("还书")
    def give_back(ctx, args):
        raise Refusal("late")

    router = Router()
    router.register(polite)
    router.register(plain)
    ctx = SimpleNamespace(roles=set(), openid="o", end=lambda **_: None,
                          understood=lambda _: None)
    assert router.run(ctx, *router.match("借书 红楼梦")) == "none_left:红楼梦"
    with pytest.raises(Refusal):  # no handler: the webhook's error boundary answers kindly
        router.run(ctx, *router.match("还书"))
