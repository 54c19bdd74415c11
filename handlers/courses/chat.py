"""Chat for class sign-ups: `课程` (list + pick a number), `报名 3`, `取消报名 3`, `我的课程`."""
from __future__ import annotations

import re

from bot import roles
from bot.router import NEW_MESSAGE, Handlers
from bot.text import find_ordinal, parse_number
from handlers.courses import service
from handlers.courses.service import Actor, Refusal

handlers = Handlers("courses")

PICK_STATE = "course.pick"
# The level or kind a course name ends with, which people leave out when they name it.
NAME_TAIL = re.compile(r"(?:(?:入门|初级|中级|高级|提高|基础|兴趣)(?:班|课|课程)?|班|课|课程)$")


def _actor(ctx) -> Actor:
    return ctx.actor


def _who(ctx) -> dict:
    return {"on_behalf": ctx.on_behalf, "cadre_name": ctx.cadre.name}


LISTED = ("not_found", "deadline_passed", "finished", "no_such_name", "busy")


@handlers.refusal
def _refused(ctx, refusal: Refusal, with_list: bool = True) -> str:
    """The reason in words, and (for sign-up refusals) what can be signed up for instead."""
    courses = service.open_courses(ctx.db, ctx.now) \
        if with_list and refusal.code in LISTED else []
    return ctx.reply("courses/refused", code=refusal.code, courses=courses, **refusal.values,
                     **_who(ctx))


def course_command(*words: str, **options):
    """Register a cadre/family command (its Refusals answer through `_refused`)."""
    return handlers.command(*words, role=roles.CADRE, **options)


def _by_name(views, text: str):
    """The one course whose name is, or contains, the words (None when none or several)."""
    exact = [v for v in views if v.name == text]
    if exact:
        return exact[0]
    found = [v for v in views if text and text in v.name]
    if not found:  # `那个书法的，我报一个`: the name's own words inside a sentence
        found = [v for v in views if len(_core(v.name)) >= 2 and _core(v.name) in text]
    return found[0] if len(found) == 1 else None


def _core(name: str) -> str:
    """What people call a course: 书法入门 -> 书法, 八段锦提高班 -> 八段锦."""
    return NAME_TAIL.sub("", name) or name


def _number_of(ctx, args: str, views) -> int | None:
    """A course number from `3`, `三`, `3号` or (part of) a course name; None if neither."""
    number = parse_number(args)
    if number is None and views:  # `我要第三个`
        number = find_ordinal(args)
    if number is not None:
        return number
    view = _by_name(views, args) or \
        _by_name(views, ctx.services.router.phrasings.course_name(args))  # `写毛笔字的`
    if view is None and args:
        raise Refusal("no_such_name", text=args)
    return view.number if view else None


# ---- listing and signing up ----------------------------------------------------------------
@course_command("课程", "课程报名", "报名课程", click="MENU_COURSES", menu=True, order=40)
def list_courses(ctx, args):
    """Open courses with number, schedule, venue and seats left; a number then signs up."""
    return _list(ctx)


def _list(ctx) -> str:
    views = service.open_courses(ctx.db, ctx.now)
    if not views:
        ctx.end()
        return ctx.reply("courses/none", **_who(ctx))
    return ctx.ask(PICK_STATE, "courses/list", data={}, courses=views, **_who(ctx))


@course_command("报名")
def sign_up_command(ctx, args):
    """`报名 3` (or `报名 书法`); without a course it lists them."""
    if not args:
        return _list(ctx)
    if parse_number(args) is None and ctx.services.router.phrasings.only_asks(args):
        return _asked(ctx) or _list(ctx)   # `报名书法班是免费的吗` signs up for nothing
    number = _number_of(ctx, args, service.open_courses(ctx.db, ctx.now))
    return _sign_up(ctx, number)


def _asked(ctx) -> str | None:
    """A question about a rule (`这个书法班要交钱吗`) goes to a person; None for any other."""
    router = ctx.services.router
    if not (router.phrasings.inquiry_in(ctx.plain) and router.may_ask_person(ctx)):
        return None
    ctx.end()
    return router.to_person(ctx)


def _sign_up(ctx, number: int) -> str:
    outcome = service.sign_up(ctx.db, number, _actor(ctx), ctx.now, ctx.push)
    ctx.end()
    if outcome.changed:
        ctx.log("course %s: %s", number, outcome.state)
    return ctx.reply("courses/signed_up", o=outcome, c=outcome.course, **_who(ctx))


def pick_step(ctx):
    """The course number (or name) after the list; any command leaves the list. A refusal
    keeps the list open (the reason, then the courses again), unlike other dialogs."""
    if ctx.text and ctx.services.router.match(ctx.text) is not None:
        return NEW_MESSAGE
    router = ctx.services.router
    found = router.command_in(ctx) if ctx.text else None
    if isinstance(found, tuple) and router.giving_up(ctx):  # `都没有我想学的，不报了`
        return router.quit(ctx)
    if found is None and (ctx.leads_with("quit") or ctx.ends_with("quit")):
        return router.quit(ctx)  # `都不想报，太远了`
    if isinstance(found, tuple) and found[0].words[0] not in ("报名", "课程"):
        return NEW_MESSAGE  # `书法我不去了，给我退了`: another command in everyday words
    if ctx.msg_type not in ("text", "voice") or not ctx.text:
        return ctx.reask()
    if router.phrasings.only_asks(ctx.raw_text or ctx.text) and ctx.number() is None and \
            not ctx.answer("take_it"):   # `书法班还有名额吗`: a question signs up for nothing
        return _asked(ctx) or ctx.reask()
    if found is None and ctx.answer("unable"):  # `眼睛花了，毛笔字是写不动喽`: no sign-up
        if ctx.in_a_clause("quit"):   # `…我也走不动了，不看了，退出吧，谢谢你们啊`
            return router.quit(ctx)
        ctx.end()
        return router.mean(ctx, "kind", kind="told")
    try:
        views = service.open_courses(ctx.db, ctx.now)
        if len(views) == 1 and ctx.answer("take_it"):  # `给我爸报一个`: the only one listed
            ctx.understood("报名")
            return _sign_up(ctx, views[0].number)
        number = _number_of(ctx, ctx.text, views)
        ctx.understood("报名")
        return _sign_up(ctx, number)
    except Refusal as refusal:
        if refusal.code == "no_such_name":
            return ctx.reask()
        # Stay in the list: the reason, then the same question with the courses again.
        return ctx.reply("courses/pick_again", answer=_refused(ctx, refusal, with_list=False),
                         prompt=_list(ctx))


handlers.dialog({PICK_STATE: pick_step}, role=roles.CADRE)  # the course list: which one


# ---- cancelling and the cadre's own courses ------------------------------------------------
@course_command("取消报名", "退课")
def cancel_command(ctx, args):
    """`取消报名 3`: give up a seat or a wait-list place (the first waiting gets the seat)."""
    mine = service.my_courses(ctx.db, ctx.cadre.id, ctx.now)
    number = _number_of(ctx, args, [m.course for m in mine]) if args else None
    if number is None:
        return ctx.reply("courses/cancel_which", mine=mine, **_who(ctx))
    outcome = service.cancel(ctx.db, number, _actor(ctx), ctx.now, ctx.push)
    ctx.log("course %s: cancelled, promoted %s", number, outcome.promoted)
    return ctx.reply("courses/cancelled", c=outcome.course, **_who(ctx))


@course_command("请假")
def leave_command(ctx, args):
    """`请假 3` (or `明天书法课我去不了`): away from the next session only, the seat kept; with
    several courses and none named, which one is asked."""
    mine = [m for m in service.my_courses(ctx.db, ctx.cadre.id, ctx.now)
            if m.state == service.ENROLLED]
    try:
        number = _number_of(ctx, args, [m.course for m in mine]) if args else None
    except Refusal:  # a name that is none of theirs: their courses, to choose from
        number = None
    else:
        if number is None and len(mine) == 1:
            number = mine[0].course.number
    if number is None:
        return ctx.reply("courses/leave_which", mine=mine, **_who(ctx))
    meeting, again = service.leave_next(ctx.db, number, _actor(ctx), ctx.now)
    ctx.log("course %s: leave for session %s", number, meeting.id)
    return ctx.reply("courses/leave_taken", c=service.course_view(ctx.db, meeting.course, ctx.now),
                     at=meeting.starts_at.astimezone(ctx.now.tzinfo), again=again, **_who(ctx))


@course_command("我的课程", "我的报名")
def my_courses(ctx, args):
    """The cadre's seats and wait-list places, with the next session of each."""
    mine = service.my_courses(ctx.db, ctx.cadre.id, ctx.now)
    return ctx.reply("courses/mine", mine=mine, **_who(ctx))
