"""Chat for 急难愁盼: the report dialog, the reporter's commands, and staff triage in chat."""
from __future__ import annotations

import re
from functools import wraps

from bot import roles
from bot.router import Handlers
from bot.text import parse_number
from handlers.issues import service
from handlers.issues.policy import load_policy
from handlers.issues.service import Refusal, Reporter
from handlers.issues.views import chat_reach, event_views, ticket_view

handlers = Handlers("issues")

RATE_STATE = service.RATE_STATE
MAX_ATTACHMENTS = 12
MAX_TEXT = service.MAX_TEXT
URGENCY_WORDS = {"一般": False, "不急": False, "不太急": False,
                 "紧急": True, "急": True, "很急": True, "加急": True, "特别急": True}
SEPARATORS = " 　，,:：、。."
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
    raw = (ctx.raw_text or "").strip()
    if not word or not raw.startswith(word):
        return args
    return raw[len(word):].lstrip(SEPARATORS)[:MAX_TEXT]


def _policy(ctx):
    return load_policy(ctx.services.settings)


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
                  menu="反映问题", order=20)
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
    if ctx.msg_type == "voice" and ctx.message.media_id:
        data["attachments"] = data.get("attachments", []) + [
            {"kind": "voice", "media_id": ctx.message.media_id}]
    return data


def _command_word(ctx) -> str:
    """Which of the report words started this message (for taking the rest verbatim)."""
    return next((w for w in ("反映问题", "急难愁盼") if (ctx.raw_text or "").strip()
                 .startswith(w)), "")


def _ask_category(ctx, data: dict, note: str | None = None) -> str:
    prompt = ctx.ask("report.category", "issues/ask_category", data=data,
                     categories=_policy(ctx).categories, on_behalf=ctx.on_behalf,
                     cadre_name=ctx.cadre.name)
    return f"{note}\n\n{prompt}" if note else prompt


def _ask_description(ctx, data: dict) -> str:
    return ctx.ask("report.description", "issues/ask_description", data=data,
                   category=_policy(ctx).category_name(data["category"]))


def _ask_confirm(ctx) -> str:
    d = ctx.data
    items = d.get("attachments", [])
    place = next((a for a in reversed(items) if a["kind"] == "location"), None)
    return ctx.ask("report.confirm", "issues/ask_confirm",
                   category=_policy(ctx).category_name(d["category"]),
                   description=d["description"], urgent=d["urgent"],
                   photos=sum(a["kind"] == "image" for a in items),
                   location=_place_label(place) if place else None)


def _place_label(item: dict) -> str:
    return item.get("label") or f"{item.get('latitude')},{item.get('longitude')}"


def intake(ctx) -> dict | None:
    """The photo or place in this message as an attachment, or None."""
    m = ctx.message
    if ctx.msg_type == "image":
        return {"kind": "image", "media_id": m.media_id, "url": m.image}
    if ctx.msg_type == "location":
        return {"kind": "location", "latitude": m.location_x, "longitude": m.location_y,
                "label": m.label or None}
    return None


def _attached(ctx, item: dict) -> str:
    """Keep a photo/place sent mid-dialog and repeat the current question."""
    items = ctx.data.get("attachments", [])
    if len(items) < MAX_ATTACHMENTS:
        items = items + [item]
    ctx.save(attachments=items)
    if ctx.state["name"] == "report.confirm":
        prompt = _ask_confirm(ctx)  # the summary now counts the new attachment
    else:
        prompt = ctx.state["prompt"]
    return ctx.reply("issues/attached", kind=item["kind"], label=item.get("label"),
                     photos=sum(a["kind"] == "image" for a in items), prompt=prompt)


def report_step(state: str):
    """Register a report-dialog step; photos, places and unclear voice are handled first."""
    def deco(fn):
        @handlers.step(state)
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
    return deco


@report_step("report.category")
def category_step(ctx):
    """Which kind of problem (by number or name)."""
    chosen = _policy(ctx).choose(ctx.text, ctx.number())
    if chosen is None and ctx.number() is None and len(ctx.text) >= 4 \
            and not ctx.data.get("description"):
        # Told us the problem instead of its kind: keep the words, ask only for the kind.
        ctx.save(**_described(ctx, ctx.data, _raw(ctx)))
        return ctx.reply("issues/noted_description", prompt=ctx.state["prompt"])
    if chosen is None:
        return ctx.reask()
    data = {**ctx.data, "category": chosen.key}
    if data.get("description"):
        return ctx.ask("report.urgency", "issues/ask_urgency", data=data)
    return _ask_description(ctx, data)


@report_step("report.description")
def description_step(ctx):
    """What happened, typed or spoken (voice arrives as its recognition)."""
    if ctx.number() is not None or len(ctx.text) < 2:
        return ctx.reask()
    data = _described(ctx, ctx.data, _raw(ctx))
    return ctx.ask("report.urgency", "issues/ask_urgency", data=data)


@report_step("report.urgency")
def urgency_step(ctx):
    """1 一般 / 2 紧急 (the words work too)."""
    number = ctx.number()
    urgent = {1: False, 2: True}.get(number) if number is not None \
        else URGENCY_WORDS.get(ctx.text)
    if urgent is None:
        return ctx.reask()
    ctx.save(urgent=urgent)
    return _ask_confirm(ctx)


@report_step("report.confirm")
def confirm_step(ctx):
    """1 submit, 2 start again (0 cancels: the router handles it, nothing is created)."""
    number = ctx.number()
    if number == 1:
        return _submit(ctx)
    if number == 2:
        kept = ctx.data.get("attachments", [])
        return _ask_category(ctx, {"attachments": kept}, ctx.reply("issues/restart",
                                                                   kept=bool(kept)))
    return ctx.reask()


def _submit(ctx) -> str:
    policy = _policy(ctx)
    ticket = service.create_ticket(ctx.db, policy, _reporter(ctx), ctx.data, ctx.now,
                                   ctx.push)
    ctx.end()
    ctx.log("filed ticket %s", ticket.id)
    notified = ticket.events[0].data.get("notified", [])
    return ctx.reply("issues/submitted", t=ticket_view(policy, ticket, ctx.now),
                     notified=bool(notified))


# ---- the reporter ------------------------------------------------------------------------
def reporter_command(*words: str, **options):
    """Register a cadre/family command (its Refusals answer through `_refused`)."""
    return handlers.command(*words, role=roles.CADRE, **options)


@reporter_command("我的问题", click="MENU_MY_ISSUES", menu="我的问题", order=21)
def my_issues(ctx, args):
    """The cadre's tickets, newest first, with their state."""
    policy = _policy(ctx)
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
        return ctx.ask("report.append", "issues/ask_note", data={"ticket": number}, n=number)
    return _note(ctx, number, text, None)


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
    ticket, names = service.add_note(ctx.db, _policy(ctx), _reporter(ctx), number, text,
                                     attachment, ctx.now, ctx.push)
    ctx.end()
    return ctx.reply("issues/note_added", n=ticket.id, told=bool(names),
                     resolved=ticket.state == "resolved")


@handlers.step("report.append")
def append_step(ctx):
    """The words, voice, photo or place that `补充 12` was waiting for."""
    item = intake(ctx)
    if ctx.msg_type == "voice" and not ctx.text:
        return ctx.reply("issues/voice_unclear", prompt=ctx.state["prompt"])
    if item is None and not ctx.text:
        return ctx.reask()
    try:
        return _note(ctx, ctx.data["ticket"], None if item else _raw(ctx), item)
    except Refusal as refusal:
        ctx.end()
        return _refused(ctx, refusal)


@reporter_command("评价")
def rate_command(ctx, args):
    """`评价 12 5` (or `评价 5` for the latest resolved ticket)."""
    parts = args.replace("分", " ").split()
    numbers = [parse_number(p) for p in parts]
    if not 1 <= len(numbers) <= 2 or None in numbers or not 1 <= numbers[-1] <= 5:
        raise Refusal("rate_usage")
    return _rate(ctx, numbers[0] if len(numbers) == 2 else None, numbers[-1])


def _rate(ctx, number: int | None, score: int) -> str:
    ticket = service.rate(ctx.db, _policy(ctx), _reporter(ctx), number, score, ctx.now,
                          ctx.push)
    ctx.end()
    return ctx.reply("issues/rated", n=ticket.id, score=score)


@handlers.step(RATE_STATE)
def rate_step(ctx):
    """The answer to the one-time rating question; anything but a score drops the question."""
    score = ctx.number()
    if score is None or ctx.cadre is None:
        ctx.end()  # asked once: this message is handled as if the question was never asked
        return ctx.services.router.dispatch(ctx)
    if not 1 <= score <= 5:
        return ctx.reask()
    try:
        return _rate(ctx, ctx.data.get("ticket"), score)
    except Refusal as refusal:
        ctx.end()
        return _refused(ctx, refusal)


def ask_rating(ctx, ticket) -> None:
    """Put the reporter in front of the rating question (unless busy in another dialog)."""
    service.ask_rating(ctx.services, ctx.db, ticket, ctx.openid)


def drop_rating_question(ctx, ticket) -> None:
    """A reopened ticket is not to be rated: withdraw a pending rating question about it."""
    service.drop_rating_question(ctx.services, ctx.db, ticket)


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


@handlers.command("待办", role=roles.STAFF, menu="待办问题", order=80)
def todo(ctx, args):
    """Unresolved tickets, urgent and oldest first, with how long each has waited."""
    policy, staff = _policy(ctx), service.staff_of(ctx.db, ctx.openid)
    tickets = service.active_tickets(ctx.db)
    return ctx.reply("issues/todo", tickets=[ticket_view(policy, t, ctx.now, staff.id)
                                             for t in tickets[:30]],
                     more=max(len(tickets) - 30, 0), on_duty=staff.on_duty)


@staff_command("接单", implicit=True)
def claim(ctx, staff, number, rest):
    """`接单 12` (or just `接单` after a ticket push): take the ticket."""
    policy = _policy(ctx)
    ticket = service.claim(ctx.db, policy, staff, number, ctx.now, ctx.push)
    ctx.log("claimed ticket %s", ticket.id)
    return ctx.reply("issues/claimed", t=ticket_view(policy, ticket, ctx.now))


@staff_command("回复", implicit=True)
def reply(ctx, staff, number, rest):
    """`回复 12 内容` (or `回复 内容` after a push): relayed to the reporter and family."""
    policy = _policy(ctx)
    was_open = service.get_ticket(ctx.db, number).state == "open"
    ticket, recipients = service.reply(ctx.db, policy, staff, number, rest, ctx.now, ctx.push)
    reach = chat_reach(ctx.db, ctx.services.settings, ticket.reporter_openid, ctx.now)
    ctx.log("replied on ticket %s to %d people", ticket.id, len(recipients))
    return ctx.reply("issues/replied", t=ticket_view(policy, ticket, ctx.now),
                     count=len(recipients), reach=reach, claimed_now=was_open)


@staff_command("转办")
def transfer(ctx, staff, number, rest):
    """`转办 12 姓名`: hand the ticket to a colleague."""
    policy = _policy(ctx)
    ticket = service.transfer(ctx.db, policy, staff, number, rest, ctx.now, ctx.push)
    return ctx.reply("issues/transferred", t=ticket_view(policy, ticket, ctx.now, staff.id))


@staff_command("办结")
def resolve(ctx, staff, number, rest):
    """`办结 12 说明`: resolve; the reporter hears the result and is asked to rate."""
    policy = _policy(ctx)
    ticket = service.resolve(ctx.db, policy, staff, number, rest, ctx.now, ctx.push)
    ask_rating(ctx, ticket)
    return ctx.reply("issues/resolved", t=ticket_view(policy, ticket, ctx.now))


@staff_command("重开")
def reopen(ctx, staff, number, rest):
    """`重开 12 [原因]`: back to work, to the same assignee."""
    policy = _policy(ctx)
    ticket = service.reopen(ctx.db, policy, staff, number, rest, ctx.now, ctx.push)
    drop_rating_question(ctx, ticket)
    return ctx.reply("issues/reopened", t=ticket_view(policy, ticket, ctx.now, staff.id))


@staff_command("详情", implicit=True)
def detail(ctx, staff, number, rest):
    """`详情 12`: the whole history, contact details and chat reachability."""
    policy = _policy(ctx)
    ticket = service.get_ticket(ctx.db, number)
    service.set_focus(ctx.db, staff.id, ticket.id, ctx.now)
    return ctx.reply("issues/detail", t=ticket_view(policy, ticket, ctx.now, staff.id),
                     events=event_views(ctx.db, policy, ticket),
                     attachments=ticket.attachments,
                     reach=chat_reach(ctx.db, ctx.services.settings, ticket.reporter_openid,
                                      ctx.now))
