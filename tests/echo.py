"""Test-only handlers that make the foundation's behaviour observable (echo, count, sleep…)."""
from __future__ import annotations

import threading
import time

from bot import roles
from bot.router import Handlers

handlers = Handlers("test-echo")
calls: dict[str, int] = {}
_lock = threading.Lock()


def count(name: str) -> None:
    """Count one handling of `name` (tests assert how many times a message was handled)."""
    with _lock:
        calls[name] = calls.get(name, 0) + 1


@handlers.command("回声")
def echo(ctx, args):
    """Echo the raw text back (to prove user text cannot break out of CDATA)."""
    return ctx.raw_text.replace("回声", "", 1).strip()


@handlers.command("计数")
def counted(ctx, args):
    """Count, push a note to the sender, and answer with the count so far."""
    count(args or "default")
    ctx.push(ctx.openid, "core/raw", text=f"推送:{args}")
    return f"计数:{args}"


@handlers.command("慢")
def slow(ctx, args):
    """Sleep past the reply budget, then answer."""
    time.sleep(float(args or 1.0))   # the scenario: a handler that really takes this long
    count("slow")
    return "慢回复"


@handlers.command("出错")
def broken(ctx, args):
    """Change something, push something, then fail: all of it must roll back."""
    ctx.follower.scene = "should-roll-back"
    ctx.push(ctx.openid, "core/raw", text="不应送达")
    raise RuntimeError("boom 13812345678")


@handlers.command("长文")
def long_text(ctx, args):
    """A reply longer than WeChat's 2048-byte limit."""
    return "\n".join(f"第{i}行：老同志您好，这是一段很长的通知内容。" for i in range(1, 121))


@handlers.command("工作台", role=roles.STAFF, menu="工作台", order=85)
def staff_only(ctx, args):
    """A staff-only command that shows in staff menus."""
    return "工作台已打开"


@handlers.command("点菜", menu="点菜测试", order=95)
def order_start(ctx, args):
    """Start a two-step dialog."""
    return ctx.ask("order.dish", "core/raw", data={}, text="请选择：1 饺子 2 面条")


@handlers.step("order.dish")
def order_dish(ctx):
    """Step one: a numbered choice."""
    choice = ctx.number()
    if choice not in (1, 2):
        return ctx.reask()
    dish = {1: "饺子", 2: "面条"}[choice]
    return ctx.ask("order.confirm", "core/raw", data={"dish": dish},
                   text=f"您选了{dish}。1 确认 2 重选")


@handlers.step("order.confirm")
def order_confirm(ctx):
    """Step two: confirm."""
    if ctx.number() == 1:
        dish = ctx.data["dish"]
        ctx.end()
        count(f"order:{dish}")
        return f"已下单：{dish}"
    if ctx.number() == 2:
        return ctx.ask("order.dish", "core/raw", data={}, text="请选择：1 饺子 2 面条")
    return ctx.reask()


def install(app) -> None:
    """Register these handlers on an app's router."""
    app.extensions["yinling"].router.register(handlers)


def create() -> object:
    """WSGI entry for gunicorn tests: the real app plus these handlers."""
    from bot import create_app

    app = create_app()
    install(app)
    return app
