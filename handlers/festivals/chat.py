"""Chat for festival visits: cadres answer `走访 …` / `不在家`; staff list them (`走访安排`)."""
from __future__ import annotations

from bot import roles
from bot.router import Handlers
from handlers.festivals import service
from handlers.festivals.calendar import load_calendar

handlers = Handlers("festivals")

TIME_STATE = "festival.time"
SEPARATORS = " 　，,:：、。.;；"
AWAY_WORDS = {"不在家", "我不在家", "不在", "家里没人", "没人在家", "不在本地", "出远门了"}


def _calendar(ctx):
    return load_calendar(ctx.services.settings)


def _today(ctx):
    return ctx.now.astimezone(ctx.services.settings.zone).date()


def _words(text: str) -> str:
    """The time as the user gave it (normalised: half-width digits, no trailing punctuation).

    A bare number (`1`) is no time (a menu choice typed out of habit): treated as nothing.
    """
    words = text.strip(SEPARATORS)[:service.MAX_TIME_TEXT]
    return "" if words.isdigit() else words


def _is_away(words: str) -> bool:
    return words in AWAY_WORDS


def _pending(ctx):
    return service.pending_visit(ctx.db, ctx.cadre.id, _today(ctx))


def _named(ctx, args: str):
    """(visit, the rest of the words) when the answer starts with a festival's name that has an
    open notice (`走访 国庆 周六上午` while 中秋's notice is also open), else (None, args)."""
    words = args.strip(SEPARATORS)
    for festival in _calendar(ctx).festivals:
        names = {festival.name, festival.name.removesuffix("节"), *festival.aliases}
        for name in sorted(names, key=len, reverse=True):
            if name and words.startswith(name):
                visit = service.pending_visit(ctx.db, ctx.cadre.id, _today(ctx), festival.key)
                if visit is not None:
                    return visit, words[len(name):]
    return None, args


def _festival_of(ctx, visit):
    """The configured festival of a visit row (None if removed from the file since)."""
    return _calendar(ctx).get(visit.festival_key)


def _answer(ctx, visit, words: str | None) -> str:
    service.record_answer(ctx.db, visit, words, ctx.openid, ctx.on_behalf, ctx.now)
    ctx.end()
    festival = _festival_of(ctx, visit)
    return ctx.reply("festivals/answered", name=festival.name if festival else None,
                     day=visit.festival_date, words=words, on_behalf=ctx.on_behalf,
                     cadre_name=ctx.cadre.name)


def _no_notice(ctx) -> str:
    return ctx.reply("festivals/no_notice")


@handlers.command("走访", role=roles.CADRE)
def visit_time(ctx, args):
    """`走访 周六上午` (or `走访 国庆 周六上午`): the preferred time; `走访` alone asks for it."""
    visit, args = _named(ctx, args)
    visit = visit or _pending(ctx)
    if visit is None:
        return _no_notice(ctx)
    words = _words(args)
    if _is_away(words):
        return _answer(ctx, visit, None)
    if words:
        return _answer(ctx, visit, words)
    festival = _festival_of(ctx, visit)
    return ctx.ask(TIME_STATE, "festivals/ask_time", data={"visit": visit.id},
                   name=festival.name if festival else None, day=visit.festival_date,
                   period=festival.visit_period(visit.festival_date) if festival else None)


@handlers.command("不在家", role=roles.CADRE)
def not_home(ctx, args):
    """`不在家` (or `不在家 国庆`): nobody will be home for the visit."""
    visit, _ = _named(ctx, args)
    visit = visit or _pending(ctx)
    if visit is None:
        return _no_notice(ctx)
    return _answer(ctx, visit, None)


@handlers.step(TIME_STATE, role=roles.CADRE)
def time_step(ctx):
    """The preferred time that `走访` asked for (typed or spoken), or `不在家`."""
    if ctx.msg_type not in ("text", "voice") or not ctx.text:
        return ctx.reask()
    visit = _pending(ctx)
    if visit is None:  # the festival passed while the question was open
        ctx.end()
        return _no_notice(ctx)
    words = _words(ctx.text)
    if words.startswith("走访"):  # `走访 周六上午` typed again inside the question
        words = _words(words[2:])
    if _is_away(words):
        return _answer(ctx, visit, None)
    return _answer(ctx, visit, words) if words else ctx.reask()


@handlers.command("走访安排", role=roles.STAFF, menu=True, order=82)
def arrangements(ctx, args):
    """`走访安排 中秋`: who wants a visit when, who is away, who has not answered."""
    cal, today = _calendar(ctx), _today(ctx)
    words = args.strip(SEPARATORS)
    if words:
        festival = cal.find(words)
        if festival is None:
            return ctx.reply("festivals/unknown_festival", words=words,
                             festivals=[f for f in cal.festivals if f.visit])
        if not festival.visit:
            return ctx.reply("festivals/no_visits", festival=festival,
                             festivals=[f for f in cal.festivals if f.visit])
        day = service.occurrence_for_staff(ctx.db, festival, today)
    else:
        found = service.next_visit(cal, today)
        if found is None:
            return ctx.reply("festivals/no_visits", festival=None, festivals=[])
        festival, day = found
    view = service.arrangements(ctx.db, festival, day)
    return ctx.reply("festivals/arrangements", a=view, today=today,
                     period=festival.visit_period(day))
