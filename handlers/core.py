"""Core conversation: `更多`, follow/unfollow/scan, and non-text messages outside dialogs."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from bot.inbox import abandoned
from bot.jobs import JobSpec
from bot.router import SILENT_EVENTS, Handlers
from bot.text import normalise
from models import Staff, utcnow

handlers = Handlers("core")
ABANDONED_AFTER = timedelta(minutes=2)  # far past the webhook's budget and WeChat's retries


@handlers.command("菜单", "帮助", click="MENU_HELP")
def menu(ctx, args):
    """The numbered menu (also what everyday words like `有什么功能` ask for)."""
    return ctx.menu()


@handlers.command("更多", takes=r"[\s呢吗啊呀吧？?。!！]*")   # `更多的话也不说了` is none
def more(ctx, args):
    """The next part of a reply that was too long for one message."""
    rest = ctx.follower.more_text
    if not rest:
        return ctx.reply("core/no_more")
    ctx.follower.more_text = None
    return rest


@handlers.event("subscribe", "subscribe_scan")
def subscribe(ctx):
    """Welcome a new (or returning) follower; remember the QR scene they came from."""
    follower = ctx.follower
    ctx.understood("菜单")
    returning = follower.unsubscribed_at is not None
    follower.subscribed, follower.subscribed_at = True, utcnow()
    if ctx.event == "subscribe_scan" and ctx.message.scene_id:
        follower.scene = str(ctx.message.scene_id)[:64]
    ctx.log("subscribed (scene %s, returning %s)", follower.scene, returning)
    welcome = ctx.reply("core/welcome", returning=returning)
    bound = _scanned_binding_code(ctx)
    return f"{welcome}\n\n{bound}" if bound else ctx.menu(welcome)


@handlers.event("unsubscribe")
def unsubscribe(ctx):
    """Mark the follower inactive: no more pushes, nothing deleted."""
    ctx.follower.subscribed, ctx.follower.unsubscribed_at = False, utcnow()
    ctx.end()
    ctx.log("unsubscribed")
    return None


@handlers.event("scan")
def scan(ctx):
    """A follower scanned a QR code again: note the scene, show the menu (or, for a personal
    binding code, start binding)."""
    if ctx.message.scene_id:
        ctx.follower.scene = str(ctx.message.scene_id)[:64]
    return _scanned_binding_code(ctx) or ctx.menu()


def _scanned_binding_code(ctx) -> str | None:
    """The binding question when the scanned code is a cadre's personal code, else None."""
    scene = str(ctx.message.scene_id or "") if ctx.event in ("scan", "subscribe_scan") else ""
    if not scene.startswith("bind_"):
        return None
    return ctx.services.router.mean(ctx, "scan_bind", token=scene[len("bind_"):])


@handlers.message("image", "location", "link", "video", "shortvideo")
def other_message(ctx):
    """Outside a dialog a picture, place or link has nowhere to go: say so, offer the menu."""
    return ctx.menu(ctx.reply("core/not_text"))


# ---- understanding: kind words, two readings, emergencies, a question about a command ---------
@handlers.meaning("kind")
def kind(ctx, kind: str):
    """`谢谢`, `好的`, `嗯嗯`, a greeting, chit-chat: one kind line, not the menu (a staff
    member's remark to colleagues gets the commands too, and is noted as an `aside`)."""
    if kind == "aside":
        ctx.understood("aside")
    return ctx.reply("core/kind", kind=kind)


CLARIFY_STATE = "understand.clarify"
ASKED_STATE = "dialog.asked"


@handlers.meaning("clarify")
def clarify(ctx, options: list[str], args: str = "", number: int | None = None):
    """Two commands fit equally well: ask which one, in one short question (`number`: a
    ticket said alone, `12号`, passed to the command chosen)."""
    router = ctx.services.router
    labels = [router.rule_for(w).menu or w for w in options]
    return ctx.ask(CLARIFY_STATE, "core/clarify", data={"options": options, "args": args},
                   labels=labels, number=number)


@handlers.step(CLARIFY_STATE)
def clarify_step(ctx):
    """The number (or the words) of the reading meant."""
    router, options = ctx.services.router, ctx.data.get("options", [])
    number = ctx.number()
    chosen = options[number - 1] if number is not None and 1 <= number <= len(options) else \
        next((w for w in options if w in ctx.plain), None)
    if chosen is None:
        ctx.end()
        return router.understand(ctx)  # not an answer: a new message
    return router.run(ctx, router.rule_for(chosen), ctx.data.get("args", ""))


@handlers.step(ASKED_STATE)
def asked_step(ctx):
    """After "您是想查党费吗？": 1 runs the command (or gives up); 2 takes the words as they
    were meant, as the dialog's content (or goes on with the dialog)."""
    data, router = ctx.data, ctx.services.router
    choice = ctx.choose({1: "yes", 2: "no"}, "yes", "no", "rewrite", note=False)
    if choice is None:
        return ctx.reask()
    if choice == "yes":
        ctx.end()
        if data.get("word") is None:
            ctx.understood("quit")
            return ctx.reply("core/cancelled", menu=ctx.menu())
        return router.run(ctx, router.rule_for(data["word"]), data.get("args", ""))
    back = data["back"]
    if data.get("word") is None:  # go on with the dialog: the same question again
        ctx.resume(back)
        return back["prompt"]
    back["data"] = {**back["data"], "_content_confirmed": True}
    return _answer_again(ctx, back, data["raw"])


def _answer_again(ctx, state: dict, raw: str) -> str:
    """Put the user back in front of `state` and let its step take the words said earlier."""
    ctx.resume(state)
    ctx.raw_text, ctx.text = raw, normalise(raw)
    if hasattr(ctx, "_plain"):
        del ctx._plain
    return ctx.services.router.steps[state["name"]](ctx)


WHOM_STATE = "acting.whom"


@handlers.meaning("whom")
def whom(ctx, word: str | None, click: str | None, args: str):
    """Someone acting for several cadres: for whom is this? (asked once an hour)"""
    names = [b.cadre.name for b in ctx.bindings]
    return ctx.ask(WHOM_STATE, "core/whom", data={"word": word, "click": click, "args": args,
                                                  "cadres": [b.cadre_id for b in ctx.bindings]},
                   names=names)


@handlers.step(WHOM_STATE)
def whom_step(ctx):
    """A number (or a name) chooses the cadre; the command asked for then runs."""
    data, router = ctx.data, ctx.services.router
    names = {b.cadre.name: b.cadre_id for b in ctx.bindings}
    number = ctx.number()
    cadres = data.get("cadres", [])
    chosen = cadres[number - 1] if number is not None and 1 <= number <= len(cadres) else \
        next((cid for name, cid in names.items() if name in ctx.text), None)
    if chosen is None or chosen not in names.values():
        return ctx.reask()
    ctx.act_for(chosen)
    rule = router.rule_for(data["word"]) if data.get("word") else router.by_click(data["click"])
    return router.run(ctx, rule, data.get("args", ""))


RESUME_STATE = "dialog.resume"


@handlers.meaning("late_answer")
def late_answer(ctx):
    """An answer to a dialog that timed out (or was interrupted) within the day: say so,
    and offer to go on. None when there is no such dialog, or for kind words."""
    follower = ctx.follower
    if not follower.draft or not follower.draft_until or follower.draft_until <= ctx.now \
            or ctx.kind is not None:
        return None
    draft = json.loads(follower.draft)
    if draft.get("name") not in ctx.services.router.steps:
        return None
    return ctx.ask(RESUME_STATE, "core/resume", data={"draft": draft, "late": ctx.raw_text},
                   what=draft["name"].split(".")[0])


@handlers.step(RESUME_STATE)
def resume_step(ctx):
    """1 goes on where the dialog stopped (the late words answer its question); 0/2 drops it."""
    choice = ctx.choose({1: "yes", 2: "no"}, "yes", "no")
    data = ctx.data
    if choice == "yes":
        return _answer_again(ctx, data["draft"], data["late"] or "")
    ctx.end()
    if choice == "no":
        return ctx.reply("core/cancelled", menu=ctx.menu())
    return ctx.services.router.understand(ctx)  # not an answer: a new message


@handlers.meaning("emergency")
def emergency(ctx):
    """Danger now: 120/119 and the duty phone at once; every supervisor is alerted, at any
    hour (a reply-kind push: quiet hours and working hours do not hold it)."""
    cadre = ctx.cadre
    bosses = ctx.db.scalars(select(Staff.openid).where(
        Staff.active.is_(True), Staff.role == "supervisor", Staff.openid.is_not(None))).all()
    for openid in bosses:
        ctx.push(openid, "core/emergency_staff", kind="reply", said=(ctx.raw_text or "")[:300],
                 name=cadre.name if cadre else None, phone=cadre.phone if cadre else None,
                 address=cadre.address if cadre else None, family=ctx.on_behalf,
                 user=ctx.openid)
    ctx.log("emergency words: %d supervisors alerted", len(bosses))
    return ctx.reply("core/emergency", phone=ctx.services.settings.duty_phone)


# ---- messages lost with a dead process --------------------------------------------------------
def inbox_rescue(job) -> int:
    """Job: tell users whose message died with its process (and whose retries never came)."""
    rows = abandoned(job.db, utcnow() - ABANDONED_AFTER)
    for row in rows:
        row.status, row.reply_mode, row.handled_at = "failed", "late", utcnow()
        if (row.event or "").lower() in SILENT_EVENTS:
            continue
        at = row.received_at.astimezone(job.settings.zone)
        job.push(row.openid, "core/lost_message", campaign=f"lost:{row.id}", kind="reply",
                 text=(row.content or "")[:40], at=at, event=row.event)
    return len(rows)


jobs = [JobSpec("inbox_rescue", inbox_rescue, {"trigger": "interval", "minutes": 2},
                "Tell users whose message was lost with a dead process to send it again")]
