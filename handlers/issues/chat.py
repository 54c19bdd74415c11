"""Chat for 急难愁盼: the report dialog, the reporter's commands, and staff triage in chat."""
from __future__ import annotations

import re
from functools import wraps

from bot import roles
from bot.context import ARG_SEPARATORS as SEPARATORS
from bot.router import Handlers
from bot.text import parse_number
from handlers.issues import service
from handlers.issues.policy import load_policy
from handlers.issues.service import Refusal, Reporter
from handlers.issues.views import (attachment_views, chat_reach, console_link, event_views,
                                   media_groups, ticket_view, voice_waiting)

handlers = Handlers("issues")
# What a reporter reads of a ticket's history (`我的问题 12`); SLA reminders are for staff.
REPORTER_SEES = {"created", "note", "claimed", "replied", "transferred", "resolved", "reopened",
                 "rated"}
# The report dialog's states (and `补充 N`'s question), declared in one table below.
CATEGORY, DESCRIPTION, URGENCY, CONFIRM = ("report.category", "report.description",
                                           "report.urgency", "report.confirm")
APPEND = "report.append"

MAX_ATTACHMENTS = 12
MAX_TEXT = service.MAX_TEXT
TODO_TICKETS, TODO_ASKS = 30, 10  # lines `待办` lists (the rest: a count, the console)
# `12 内容`, `１２号，内容`, `十二` — a ticket number, then a separator or the end.
REF = re.compile(r"^([0-9０-９]+|[零〇一二两三四五六七八九十百]+)\s*号?"
                 r"(?:[\s　，,:：、。.]+|$)(.*)$", re.S)


def parse_ref(args: str) -> tuple[int | None, str]:
    """Split `12 内容` into (12, '内容'); (None, args) when args do not start with a number."""
    args = (args or "").strip()
    m = REF.match(args)
    if not m or m.group(2).startswith("号"):
        return None, args
    return parse_number(m.group(1)), m.group(2).strip()


def raw_args(ctx, word: str, args: str) -> str:
    """The arguments as the user wrote them (punctuation and all), for relayed words."""
    return ctx.words_after((word,), args)[:MAX_TEXT]


def _policy(ctx):
    return ctx.config(load_policy)


def _reporter(ctx) -> Reporter:
    return ctx.actor


@handlers.refusal
def _refused(ctx, refusal: Refusal) -> str:
    return ctx.reply("issues/refused", code=refusal.code, **refusal.values)


def _raw(ctx) -> str:
    """The user's own words (not normalised), trimmed to a sane length."""
    return (ctx.raw_text or "").strip()[:MAX_TEXT]


# ---- the report dialog -------------------------------------------------------------------
@handlers.command("反映问题", "急难愁盼", click="MENU_REPORT", role=roles.CADRE,
                  menu=True, order=20)
def report(ctx, args):
    """Start a report; `反映问题 住房` chooses the category, `反映问题 家里停水了` describes."""
    topic = args.lstrip(SEPARATORS)
    chosen = _policy(ctx).choose(topic, None) if topic else None
    if chosen is not None:
        return _ask_description(ctx, {"attachments": [], "category": chosen.key})
    data: dict = {"attachments": []}
    if len(topic) >= 2 and parse_number(topic) is None:  # said it all in one breath
        data = _described(ctx, data, raw_args(ctx, _command_word(ctx), topic))
    return _ask_category(ctx, data)


def _described(ctx, data: dict, words: str) -> dict:
    """The dialog data with the description (and, when spoken, the voice recording) added."""
    data = {**data, "description": words[:MAX_TEXT], "via": ctx.msg_type}
    recording = _recording(ctx)
    if recording is not None:
        data["attachments"] = data.get("attachments", []) + [recording]
    return data


def _recording(ctx) -> dict | None:
    """The voice recording of this message as an attachment (kept, PRODUCT.md 7.2), or None."""
    if ctx.msg_type == "voice" and ctx.message.media_id:
        return {"kind": "voice", "media_id": ctx.message.media_id[:128]}
    return None


def _command_word(ctx) -> str:
    """Which of the report words started this message (for taking the rest verbatim)."""
    return next((w for w in ("反映问题", "急难愁盼") if (ctx.raw_text or "").strip()
                 .startswith(w)), "")


def _ask_category(ctx, data: dict, note: str | None = None) -> str:
    prompt = ctx.ask(CATEGORY, "issues/ask_category", data=data,
                     categories=_policy(ctx).categories, on_behalf=ctx.on_behalf,
                     cadre_name=ctx.cadre.name)
    return f"{note}\n\n{prompt}" if note else prompt


def _ask_description(ctx, data: dict) -> str:
    return ctx.ask(DESCRIPTION, "issues/ask_description", data=data,
                   category=_policy(ctx).category_name(data["category"]))


def _ask_confirm(ctx) -> str:
    d = ctx.data
    items = d.get("attachments", [])
    place = next((a for a in reversed(items) if a["kind"] == "location"), None)
    return ctx.ask(CONFIRM, "issues/ask_confirm",
                   category=_policy(ctx).category_name(d["category"]),
                   description=d["description"], urgent=d["urgent"],
                   photos=sum(a["kind"] == "image" for a in items),
                   location=_place_label(place) if place else None)


def _place_label(item: dict) -> str:
    return item.get("label") or f"{item.get('latitude')},{item.get('longitude')}"


def intake(ctx) -> dict | None:
    """The photo or place in this message as an attachment, or None."""
    m = ctx.message
    if ctx.msg_type == "image":  # WeChat's identifiers and addresses, cut to their columns
        return {"kind": "image", "media_id": (m.media_id or "")[:128] or None,
                "url": (m.image or "")[:1024] or None}
    if ctx.msg_type == "location":
        return {"kind": "location", "latitude": m.location_x, "longitude": m.location_y,
                "label": (m.label or "")[:256] or None}
    return None


def _attached(ctx, item: dict) -> str:
    """Keep a photo/place sent mid-dialog and repeat the current question."""
    items = ctx.data.get("attachments", [])
    if len(items) < MAX_ATTACHMENTS:
        items = items + [item]
    ctx.save(attachments=items)
    if ctx.state["name"] == CONFIRM:
        prompt = _ask_confirm(ctx)  # the summary now counts the new attachment
    else:
        prompt = ctx.state["prompt"]
    return ctx.reply("issues/attached", kind=item["kind"], label=item.get("label"),
                     photos=sum(a["kind"] == "image" for a in items), prompt=prompt)


def report_intake(fn):
    """What every report step does first: keep a photo or place, re-ask after unclear voice
    or a message that is not text."""
    @wraps(fn)
    def step(ctx):
        item = intake(ctx)
        if item is not None:
            return _attached(ctx, item)
        if ctx.msg_type == "voice" and not ctx.text:
            return ctx.reply("issues/voice_unclear", prompt=ctx.state["prompt"])
        if ctx.msg_type not in ("text", "voice") or not ctx.text:
            return ctx.reask()
        return fn(ctx)
    return step


def category_step(ctx):
    """Which kind of problem (by number, name, or the words of the problem itself; a
    problem told with a word of scoring in it is still told: `说不好算哪个，反正家里没电了`)."""
    policy = _policy(ctx)
    chosen = policy.choose(ctx.text, ctx.number())
    told = chosen is None and ctx.number() is None and len(ctx.plain) >= 4 \
        and not ctx.data.get("description") and ctx.kind is None \
        and not ctx.services.router.phrasings.thanks_in(ctx.plain) \
        and (ctx.services.router.phrasings.rating(ctx.plain) is None or  # a score, unless
             ctx.services.router.phrasings.problem_in(ctx.plain)) \
        and ctx.services.router.command_in(ctx) is None
    if chosen is None and ctx.number() is None:
        chosen = policy.named_in(ctx.plain)
    if told and (ctx.says_only("quit") or ctx.in_a_clause("quit")):
        return ctx.reask()  # `算了，不弄了`: leaving, not describing
    if told and (chosen is None or (len(ctx.plain) >= 6 and chosen.key != "other")):
        # Told us the problem instead of its kind: keep the words (and the kind they name).
        data = _described(ctx, ctx.data, _raw(ctx))
        if chosen is None:
            ctx.save(**data)
            ctx.understood("content")
            return ctx.reply("issues/noted_description", prompt=ctx.state["prompt"])
        ctx.understood(f"category:{chosen.name}")
        return ctx.ask(URGENCY, "issues/ask_urgency", data={**data,
                                                                     "category": chosen.key})
    if chosen is None:
        return ctx.reask()
    ctx.understood(f"category:{chosen.name}")
    data = {**ctx.data, "category": chosen.key}
    if data.get("description"):
        return ctx.ask(URGENCY, "issues/ask_urgency", data=data)
    return _ask_description(ctx, data)


def description_step(ctx):
    """What happened, typed or spoken (voice arrives as its recognition)."""
    asked = ctx.asked_about()
    if asked is not None:
        return asked
    if ctx.number() is not None or len(ctx.plain) < 2 or ctx.kind is not None or \
            ctx.says_only("thinking"):   # `你们好，辛苦了`, `我想想啊，怎么说呢`: asked again
        return ctx.reask()
    ctx.understood("content")
    data = _described(ctx, ctx.data, _raw(ctx))
    return ctx.ask(URGENCY, "issues/ask_urgency", data=data)


def urgency_step(ctx):
    """1 一般 / 2 紧急 (and the words people use for them: 挺急的, 不着急, …)."""
    number = ctx.number()
    if number is not None:
        urgent = {1: False, 2: True}.get(number)
    else:
        said = ctx.answer("urgent", "normal", "urgency_unsure")
        if said == "urgency_unsure":   # `我也说不好急不急`: what counts as urgent, asked again
            return ctx.services.router.explain(ctx) or ctx.reask()
        urgent = {"urgent": True, "normal": False}.get(said)
    if urgent is None:
        return ctx.reask()
    ctx.understood("urgency:紧急" if urgent else "urgency:一般")
    ctx.save(urgent=urgent)
    return _ask_confirm(ctx)


def confirm_step(ctx):
    """1 submit, 2 start again, 0 (or 算了) cancels: nothing is created."""
    choice = ctx.choose({1: "yes", 2: "rewrite"}, "yes", "no", "rewrite")
    if choice is None:
        return ctx.reask()
    if choice == "yes":
        return _submit(ctx)
    if choice == "no":
        ctx.end()
        return ctx.reply("core/cancelled", menu=ctx.menu())
    kept = ctx.data.get("attachments", [])
    return _ask_category(ctx, {"attachments": kept}, ctx.reply("issues/restart", kept=bool(kept)))


def _submit(ctx) -> str:
    policy = _policy(ctx)
    ticket = service.create_ticket(ctx, _reporter(ctx), ctx.data)
    ctx.end()
    ctx.log("filed ticket %s", ticket.id)
    notified = ticket.events[0].data.get("notified", [])
    return ctx.reply("issues/submitted", t=ticket_view(policy, ticket, ctx.now),
                     notified=bool(notified))


# ---- the reporter ------------------------------------------------------------------------
def reporter_command(*words: str, **options):
    """Register a cadre/family command (its Refusals answer through `_refused`)."""
    return handlers.command(*words, role=roles.CADRE, **options)


# What a command word may be followed by when it is one: a ticket's number (and its text),
# or nothing but a filler (`我的问题都解决了` is no 我的问题; `转办给李科长的那个…` no 转办).
NUMBER_OR_NOTHING = r"(?s)[\s呢吗啊呀吧？?。!！]*|\s*(?:[#＃第]\s*)?[0-9零〇一二两三四五六七八九十百]+.*"


@reporter_command("我的问题", click="MENU_MY_ISSUES", menu=True, order=21,
                  takes=NUMBER_OR_NOTHING)
def my_issues(ctx, args):
    """The cadre's tickets, newest first, with their state; `我的问题 12`: what happened to
    that one (who took it, the replies, the result)."""
    policy = _policy(ctx)
    number = parse_number(args) if args else None
    if number is not None:
        ticket = service.reporters_ticket(ctx.db, _reporter(ctx), number)
        shown = [e for e in event_views(ctx.db, policy, ticket) if e.kind in REPORTER_SEES]
        return ctx.reply("issues/my_detail", t=ticket_view(policy, ticket, ctx.now),
                         events=shown)
    tickets = service.tickets_of_cadre(ctx.db, ctx.cadre.id)
    unrated = service.awaiting_rating(ctx.db, ctx.cadre.id)
    return ctx.reply("issues/my_list", tickets=[ticket_view(policy, t, ctx.now) for t in tickets],
                     on_behalf=ctx.on_behalf, cadre_name=ctx.cadre.name,
                     unrated=unrated.id if unrated else None)


@reporter_command("补充")
def add_note(ctx, args):
    """`补充 12 内容` adds to ticket 12; without words it asks for them (voice/photo welcome)."""
    number, text = parse_ref(raw_args(ctx, "补充", args))
    if number is None:
        number = _only_active(ctx)
    service.reporters_ticket(ctx.db, _reporter(ctx), number)
    if not text:
        return ctx.ask(APPEND, "issues/ask_note", data={"ticket": number}, n=number)
    return _note(ctx, number, text, _recording(ctx))


def _only_active(ctx) -> int:
    """The one unresolved ticket of this cadre (else a Refusal that lists the choices)."""
    active = [t for t in service.tickets_of_cadre(ctx.db, ctx.cadre.id, 50)
              if t.state != "resolved"]
    if len(active) == 1:
        return active[0].id
    if not active:
        raise Refusal("no_active")
    raise Refusal("pick_ticket", numbers=[t.id for t in active])


def _note(ctx, number: int, text: str | None, attachment: dict | None) -> str:
    ticket, names = service.add_note(ctx, _reporter(ctx), number, text, attachment)
    ctx.end()
    return ctx.reply("issues/note_added", n=ticket.id, told=bool(names),
                     resolved=ticket.state == "resolved")


def append_step(ctx):
    """The words, voice, photo or place that `补充 12` was waiting for."""
    item = intake(ctx)
    if ctx.msg_type == "voice" and not ctx.text:
        return ctx.reply("issues/voice_unclear", prompt=ctx.state["prompt"])
    if item is None and not ctx.text:
        return ctx.reask()
    asked = ctx.asked_about() if item is None else None  # `先问下，党费交了吗`: asked about
    if asked is not None:
        return asked
    if item is None and (ctx.kind is not None or ctx.says_only("thinking")):
        return ctx.reask()   # `嗯`, `我想想`: no note on the ticket, the question again
    ctx.understood("content")
    return _note(ctx, ctx.data["ticket"], None if item else _raw(ctx), item or _recording(ctx))


# The report dialog, and `补充 N`'s question (a Refusal ends either with issues/refused).
handlers.dialog({CATEGORY: category_step, DESCRIPTION: description_step, URGENCY: urgency_step,
                 CONFIRM: confirm_step}, role=roles.CADRE, wrap=report_intake)
handlers.dialog({APPEND: append_step}, role=roles.CADRE)


@reporter_command("评价")
def rate_command(ctx, args):
    """`评价 12 5` (or `评价 5` for the latest resolved ticket)."""
    parts = args.replace("分", " ").split()
    numbers = [parse_number(p) for p in parts]
    if not 1 <= len(numbers) <= 2 or None in numbers or not 1 <= numbers[-1] <= 5:
        raise Refusal("rate_usage")
    return _rate(ctx, numbers[0] if len(numbers) == 2 else None, numbers[-1])


def _rate(ctx, number: int | None, score: int) -> str:
    ticket = service.rate(ctx, _reporter(ctx), number, score)
    return ctx.reply("issues/rated", n=ticket.id, score=score)


@handlers.meaning("rating")
def rating(ctx, words_only: bool = False):
    """The answer to the rating question a resolved ticket left open for a day, beside any
    dialog: words (非常满意 … 很差) all day; a bare number only as the very next message
    (after anything else, a number is a menu choice again). None when it is no rating."""
    follower = ctx.follower
    if not follower.rating_ticket_id or not follower.rating_until or \
            follower.rating_until <= ctx.now or ctx.cadre is None or not ctx.text:
        return None
    phrasings = ctx.services.router.phrasings
    if ctx.services.router.topic_of(ctx) == "wait":
        return None  # `等一下，我问问我儿子打几分`: the question stays for later
    corrected = phrasings.after_correction(ctx.raw_text or ctx.text)  # `三分，哦不，四分`
    said = corrected or ctx.raw_text or ctx.text
    if phrasings.only(ctx.plain, "no_rating") or ctx.in_a_clause("no_rating"):  # `不打了`,
        # `算了，不评了`, `评分就免了吧，谢谢你们`: the question is dropped
        follower.rating_ticket_id = follower.rating_until = None
        follower.rating_by_number = False
        if phrasings.answer(ctx.plain, "not_fixed"):
            return None   # `暖气还是不热，不评了`: the words go on to the staff, not lost
        ctx.understood("quit")
        return ctx.reply("issues/rating_skipped")
    score = phrasings.score_given(said) or \
        phrasings.rating(phrasings.plain(corrected) if corrected else ctx.plain)
    wish = ctx.services.router.command_in(ctx) if score is not None and \
        not any(c.isdigit() for c in ctx.plain) else None
    if isinstance(wish, tuple) and "评价" not in wish[0].words:
        score = None   # `有什么课可以报`: a wish, not 可以 as a score
    if score is None:  # a sentence about the fix with the score at its end or start
        score = phrasings.rating_in(said)
    if score is not None and score >= 3 and phrasings.answer(ctx.plain, "not_fixed"):
        score = None  # `还没修好呢评什么价` (修好评 is no 好评): words for the staff
    if phrasings.answer(ctx.plain, "rating_asked") and not any(c.isdigit() for c in ctx.plain):
        ctx.understood("explain")  # `打几分？满分几分？`, `评价是干啥用的？`: what and how
        return ctx.reply("issues/rate_question", n=follower.rating_ticket_id, why=True)
    number = ctx.number() if follower.rating_by_number and not words_only else None
    first = phrasings.first_clause(said) if number is None and score is None else None
    if first and first.isdigit() and follower.rating_by_number and not words_only:
        number = int(first)   # `1，修完还是不热`: the score, then why
    if score is None and number is not None:
        if not 1 <= number <= 5:  # meant as a score: ask again, the question stays
            ctx.understood("reask")
            return ctx.reply("core/reask", prompt=ctx.reply("issues/rate_question",
                                                            n=follower.rating_ticket_id,
                                                            why=False))
        score = number
    if score is None:
        if ctx.kind is None:
            follower.rating_by_number = False
        return None
    ticket_id = follower.rating_ticket_id
    follower.rating_ticket_id = follower.rating_until = None
    follower.rating_by_number = False
    ctx.understood(f"rating:{score}")
    try:
        return _rate(ctx, ticket_id, score)
    except Refusal as refusal:
        return _refused(ctx, refusal)


@handlers.meaning("problem")
def problem(ctx):
    """A problem told straight out starts a report with those words as its description,
    and asks only what is missing; someone not yet bound is put through to a person."""
    if ctx.cadre is None:
        router = ctx.services.router
        return router.run(ctx, router.rule_for("人工"), _raw(ctx))
    policy = _policy(ctx)
    data = _described(ctx, {"attachments": []}, _raw(ctx))
    chosen = policy.named_in(ctx.plain)
    ctx.end()
    if chosen is None:
        return ctx.reply("issues/told_straight_out", prompt=_ask_category(ctx, data),
                         category=None)
    prompt = ctx.ask(URGENCY, "issues/ask_urgency", data={**data, "category": chosen.key})
    return ctx.reply("issues/told_straight_out", prompt=prompt, category=chosen.name)


# ---- staff -------------------------------------------------------------------------------
def staff_command(word: str, *, implicit: bool = False, **options):
    """Register a staff command `WORD [N] [rest]`; with `implicit`, N defaults to the focus."""
    def deco(fn):
        @handlers.command(word, role=roles.STAFF, **options)
        @wraps(fn)
        def handler(ctx, args):
            staff = service.staff_of(ctx.db, ctx.openid)
            number, rest = parse_ref(raw_args(ctx, word, args))
            if number is None:
                number = service.focus_of(ctx.db, staff.id) if implicit else None
                if number is None:
                    raise Refusal("need_number", verb=word)
            return fn(ctx, staff, number, rest)
        return handler
    return deco


@handlers.command("待办", role=roles.STAFF, menu=True, order=80)
def todo(ctx, args):
    """Unresolved tickets, urgent and oldest first, with how long each has waited; the 人工
    requests to answer (or to hear: a recording sent after the answer), as in the console;
    which of them have a recording a person must listen to."""
    from handlers.people.service import help_requests_to_hear

    policy, staff = _policy(ctx), service.staff_of(ctx.db, ctx.openid)
    tickets, total = service.first_active_tickets(ctx.db, TODO_TICKETS)
    asks = [_ask_line(ctx, r) for r in help_requests_to_hear(ctx.db, ctx.now, limit=TODO_ASKS)]
    voices = {t.id: voice_waiting(t.attachments) for t in tickets}
    heard = any(voices.values()) or any(a["voice"] for a in asks)
    return ctx.reply("issues/todo", tickets=[ticket_view(policy, t, ctx.now, staff.id)
                                             for t in tickets],
                     more=max(total - TODO_TICKETS, 0),
                     on_duty=staff.on_duty, asks=asks, voices=voices,
                     console=console_link(ctx.services.settings) if heard else None)


def _ask_line(ctx, request) -> dict:
    """One 人工 request in `待办`: waiting since it was asked, or (answered, then a recording
    came) since that recording."""
    newer = [a.created_at for a in request.attachments
             if request.answered_at and a.created_at > request.answered_at]
    since = min(newer) if newer else request.asked_at
    return {"n": request.id, "who": request.cadre.name if request.cadre else None,
            "again": request.answers > 0,
            "waited": int((ctx.now - since).total_seconds() // 60),
            "text": (request.text or "").splitlines()[-1][:30] if request.text else "",
            "voice": voice_waiting(request.attachments, request.answered_at)}


@staff_command("接单", implicit=True)
def claim(ctx, staff, number, rest):
    """`接单 12` (or just `接单` after a ticket push): take the ticket."""
    policy = _policy(ctx)
    ticket = service.claim(ctx, staff, number)
    ctx.log("claimed ticket %s", ticket.id)
    return ctx.reply("issues/claimed", t=ticket_view(policy, ticket, ctx.now))


@staff_command("回复", implicit=True)
def reply(ctx, staff, number, rest):
    """`回复 12 内容` (or `回复 内容` after a push): relayed to the reporter and family."""
    policy = _policy(ctx)
    was_open = service.get_ticket(ctx.db, number).state == "open"
    ticket, recipients = service.reply(ctx, staff, number, rest)
    reach = chat_reach(ctx.db, ctx.services.settings, ticket.reporter_openid, ctx.now)
    ctx.log("replied on ticket %s to %d people", ticket.id, len(recipients))
    return ctx.reply("issues/replied", t=ticket_view(policy, ticket, ctx.now),
                     count=len(recipients), reach=reach, claimed_now=was_open)


@staff_command("转办", takes=NUMBER_OR_NOTHING)
def transfer(ctx, staff, number, rest):
    """`转办 12 姓名`: hand the ticket to a colleague."""
    policy = _policy(ctx)
    ticket = service.transfer(ctx, staff, number, rest)
    return ctx.reply("issues/transferred", t=ticket_view(policy, ticket, ctx.now, staff.id))


@staff_command("办结", takes=NUMBER_OR_NOTHING)
def resolve(ctx, staff, number, rest):
    """`办结 12 说明`: resolve; the reporter hears the result and is asked to rate."""
    policy = _policy(ctx)
    ticket = service.resolve(ctx, staff, number, rest)
    return ctx.reply("issues/resolved", t=ticket_view(policy, ticket, ctx.now))


@staff_command("重开", takes=NUMBER_OR_NOTHING)
def reopen(ctx, staff, number, rest):
    """`重开 12 [原因]`: back to work, to the same assignee."""
    policy = _policy(ctx)
    ticket = service.reopen(ctx, staff, number, rest)
    return ctx.reply("issues/reopened", t=ticket_view(policy, ticket, ctx.now, staff.id))


@staff_command("详情", implicit=True)
def detail(ctx, staff, number, rest):
    """`详情 12`: the whole history, contact details and chat reachability."""
    policy = _policy(ctx)
    ticket = service.get_ticket(ctx.db, number)
    service.set_focus(ctx.db, staff.id, ticket.id, ctx.now)
    return ctx.reply("issues/detail", t=ticket_view(policy, ticket, ctx.now, staff.id),
                     events=event_views(ctx.db, policy, ticket),
                     attachments=attachment_views(ticket.attachments), media=media_groups(ticket),
                     reach=chat_reach(ctx.db, ctx.services.settings, ticket.reporter_openid,
                                      ctx.now))
