"""Chat for group broadcasts: `群发` dialog, `群发记录`, `撤回群发 N`, and `通知` for everyone."""
from __future__ import annotations

from functools import wraps

from bot import roles
from bot.router import NEW_MESSAGE, Handlers
from bot.text import find_ordinal, parse_number
from handlers.broadcasts import service
from handlers.broadcasts.service import Refusal

handlers = Handlers("broadcasts")

GROUP_STATE = "broadcast.group"
CONTENT_STATE = "broadcast.content"
CONFIRM_STATE = "broadcast.confirm"
PICK_STATE = "notices.pick"
SEPARATORS = " 　，,:：、。."
MENU_LABEL_REST = {"通知", "消息"}   # `群发通知` typed out from the menu label
PREVIEW_HEAD = 16


# ---- helpers -----------------------------------------------------------------------------
@handlers.refusal
def _refused(ctx, refusal: Refusal) -> str:
    return ctx.reply("broadcasts/refused", code=refusal.code, **refusal.values)


def _local(ctx, moment):
    """A stored instant in the user's zone (None stays None)."""
    return moment.astimezone(ctx.now.tzinfo) if moment is not None else None


def _goes_out_at(ctx):
    """When a broadcast composed now would go out, if not at once (quiet hours)."""
    return _local(ctx, service.goes_out_at(ctx.services.settings, ctx.now))


def _words_after(ctx, word: str) -> str:
    """What the user wrote after the command word, verbatim (punctuation kept)."""
    raw = (ctx.raw_text or "").strip()
    rest = raw[len(word):] if raw.startswith(word) else ""
    return rest.lstrip(SEPARATORS).strip()


def _raw(ctx) -> str:
    return (ctx.raw_text or "").strip()


def _via(ctx) -> str:
    return "voice" if ctx.msg_type == "voice" else "text"


def _group_names(ctx) -> dict[int, str]:
    return {g.id: g.name for g in service.admin_groups(ctx.db, ctx.openid)}


def _content_problem(content: str) -> str | None:
    """A refusal code when the text cannot be a notice, else None."""
    if parse_number(content) is not None or len(content) < 2:
        return "too_short"
    if len(content) > service.MAX_CONTENT:
        return "too_long"
    return None


def admin_intake(fn):
    """What every broadcast step does first: `群发 …` typed again starts afresh; unclear
    voice or a message that is not text is answered with the same question."""
    @wraps(fn)
    def step(ctx):
        if ctx.text.startswith("群发") and not ctx.text.startswith("群发记录"):
            return start(ctx, "")  # `群发 …` typed again: start afresh with these words
        if ctx.msg_type == "voice" and not ctx.text:
            return ctx.reply("broadcasts/voice_unclear", prompt=ctx.state["prompt"])
        if ctx.msg_type not in ("text", "voice") or not ctx.text:
            return ctx.reply("broadcasts/refused", code="not_text",
                             prompt=ctx.state["prompt"])
        return fn(ctx)
    return step


# ---- 群发: the dialog --------------------------------------------------------------------
@handlers.command("群发", role=roles.GROUP_ADMIN, menu=True, order=60)
def start(ctx, args):
    """Start a broadcast: `群发`, `群发 合唱团`, or `群发 明天上午九点开会` in one go."""
    groups = service.admin_groups(ctx.db, ctx.openid)
    if not groups:
        return ctx.reply("core/no_permission")
    words = _words_after(ctx, "群发")
    words = "" if words in MENU_LABEL_REST else words
    by_name = next((g for g in groups if g.name == words), None)
    if by_name is not None:
        return _ask_content(ctx, by_name.id, by_name.name)
    number = parse_number(words) if words else None
    if len(groups) > 1 and number is not None and 1 <= number <= len(groups):
        chosen = groups[number - 1]
        return _ask_content(ctx, chosen.id, chosen.name)
    data = {}
    if words and _content_problem(words) is None:
        data = {"content": words, "via": _via(ctx)}
    if len(groups) == 1:
        group = groups[0]
        if data:
            return _preview(ctx, {**data, "group": group.id})
        return _ask_content(ctx, group.id, group.name)
    return _ask_group(ctx, groups, data)


def _ask_group(ctx, groups, data: dict) -> str:
    return ctx.ask(GROUP_STATE, "broadcasts/ask_group", data={**data, "groups":
                                                             [g.id for g in groups]},
                   groups=[g.name for g in groups], has_content=bool(data.get("content")))


def _ask_content(ctx, group_id: int, group_name: str, note: str | None = None) -> str:
    return ctx.ask(CONTENT_STATE, "broadcasts/ask_content", data={"group": group_id},
                   group=group_name, max_len=service.MAX_CONTENT, note=note)


def _preview(ctx, data: dict) -> str:
    """Show the notice as it will read, with how many will receive it; 1 sends."""
    names = _group_names(ctx)
    if data["group"] not in names:
        ctx.end()
        return _refused(ctx, Refusal("not_admin", group=None))
    count = len(service.recipients(ctx.db, data["group"]))
    if count == 0:
        ctx.end()
        return _refused(ctx, Refusal("nobody", group=names[data["group"]]))
    return ctx.ask(CONFIRM_STATE, "broadcasts/preview", data=data, group=names[data["group"]],
                   content=data["content"], count=count, later=_goes_out_at(ctx),
                   now=ctx.now, quiet=ctx.services.settings.quiet_hours)


def group_step(ctx):
    """Which group (by number or by name)."""
    ids = ctx.data.get("groups", [])
    names = _group_names(ctx)
    number = ctx.number()
    chosen = ids[number - 1] if number is not None and 1 <= number <= len(ids) else \
        next((i for i in ids if names.get(i) == ctx.text), None)
    if chosen is None or chosen not in names:
        return ctx.reask()
    if ctx.data.get("content"):
        return _preview(ctx, {"group": chosen, "content": ctx.data["content"],
                              "via": ctx.data.get("via", "text")})
    return _ask_content(ctx, chosen, names[chosen])


def content_step(ctx):
    """The words of the notice, typed or spoken (a command or `算了` is asked about)."""
    asked = ctx.asked_about()
    if asked is not None:
        return asked
    if ctx.says_only("thinking"):   # `我想想怎么写`: the question again
        return ctx.reask()
    content = _raw(ctx)
    problem = _content_problem(content)
    if problem:
        ctx.understood("reask")   # too short (`好`), too long: said why, asked again
        return ctx.reply("broadcasts/refused", code=problem, length=len(content),
                         max_len=service.MAX_CONTENT, prompt=ctx.state["prompt"])
    ctx.understood("content")
    return _preview(ctx, {"group": ctx.data["group"], "content": content, "via": _via(ctx)})


def confirm_step(ctx):
    """1 send, 2 write it again, 0 (or 不发了) cancels: nothing is sent."""
    choice = ctx.choose({1: "yes", 2: "rewrite"}, "yes", "no", "rewrite")
    if choice is None:
        return ctx.reask()
    if choice == "yes":
        return _send(ctx)
    if choice == "no":
        ctx.end()
        return ctx.reply("core/cancelled", menu=ctx.menu())
    if choice == "rewrite":
        names = _group_names(ctx)
        group = ctx.data["group"]
        return _ask_content(ctx, group, names.get(group, ""), ctx.reply("broadcasts/rewrite"))
    return ctx.reask()


def _send(ctx) -> str:
    data = ctx.data
    ctx.end()
    sent = service.send(ctx.db, ctx.services.outbox, ctx.openid,
                        data["group"], data["content"], data.get("via", "text"), ctx.now)
    ctx.adopt(sent.deliveries)   # handed to the dispatcher after the commit
    b = sent.broadcast
    ctx.log("broadcast %s sent to %d people", b.id, len(sent.deliveries))
    return ctx.reply("broadcasts/sent", n=b.id, group=b.group.name, count=len(sent.deliveries),
                     later=_local(ctx, b.not_before), now=ctx.now,
                     quiet=ctx.services.settings.quiet_hours)


# ---- 群发记录 and 撤回群发 ------------------------------------------------------------------
# The broadcast dialog (a Refusal ends it with broadcasts/refused).
handlers.dialog({GROUP_STATE: group_step, CONTENT_STATE: content_step,
                 CONFIRM_STATE: confirm_step}, role=roles.GROUP_ADMIN, wrap=admin_intake)


def _view(ctx, b, counts) -> dict:
    """What the history shows of one broadcast."""
    return {"n": b.id, "group": b.group.name, "at": _local(ctx, b.created_at),
            "head": b.content[:PREVIEW_HEAD], "cut": len(b.content) > PREVIEW_HEAD,
            "c": counts, "mine": b.sender_openid == ctx.openid,
            "later": _local(ctx, b.not_before) if b.not_before and b.not_before > ctx.now
            else None,
            "revoked": b.revoked_at is not None}


@handlers.command("群发记录", role=roles.GROUP_ADMIN, menu=True, order=61)
def history(ctx, args):
    """The last broadcasts (own, and to groups this admin runs) with delivery counts."""
    rows = service.history(ctx.db, ctx.openid)
    counts = service.counts(ctx.db, [b.id for b in rows])
    return ctx.reply("broadcasts/history", items=[_view(ctx, b, counts[b.id]) for b in rows],
                     now=ctx.now)


@handlers.command("撤回群发", "撤销群发", role=roles.GROUP_ADMIN)
def revoke(ctx, args):
    """`撤回群发 12`: stop the part of broadcast 12 that has not gone out yet."""
    number = parse_number(args.replace("号群发", "").replace("群发", "")) if args else None
    if number is None:
        latest = service.history(ctx.db, ctx.openid, 1)
        raise Refusal("need_number", example=latest[0].id if latest else None)
    b, stopped, counts = service.revoke(ctx.db, ctx.services.outbox.cancel, ctx.openid,
                                        number, ctx.now)
    ctx.log("withdrew broadcast %s: %d stopped", b.id, stopped)
    return ctx.reply("broadcasts/revoked", n=b.id, group=b.group.name, stopped=stopped,
                     gone=counts.delivered + counts.sending, failed=counts.failed)


# ---- 通知: reading notices (no binding needed) ----------------------------------------------
def _notice_views(ctx) -> list[dict]:
    return [{"id": b.id, "group": b.group.name, "at": _local(ctx, b.created_at),
             "content": b.content, "head": b.content[:PREVIEW_HEAD],
             "cut": len(b.content) > PREVIEW_HEAD}
            for b in service.notices_for(ctx.db, ctx.openid, ctx.now)]


@handlers.command("通知公告", "通知", click="MENU_NOTICES", menu=True, order=45)
def notices(ctx, args):
    """The latest notices to this user's groups; `通知 2` shows the second in full."""
    items = _notice_views(ctx)
    number = parse_number(args) if args else None
    if number is not None and items:
        return _one(ctx, items, number)
    if not items:
        return ctx.reply("broadcasts/no_notices", bound=ctx.cadre is not None,
                         on_behalf=ctx.on_behalf)
    return ctx.ask(PICK_STATE, "broadcasts/notices", data={"ids": [i["id"] for i in items]},
                   items=items, now=ctx.now)


def _one(ctx, items: list[dict], number: int) -> str:
    if not 1 <= number <= len(items):
        return ctx.reply("broadcasts/refused", code="no_such_notice", n=number,
                         total=len(items))
    ctx.end()
    return ctx.reply("broadcasts/notice_detail", item=items[number - 1], number=number,
                     total=len(items), now=ctx.now)


def pick_step(ctx):
    """A number right after the list opens that notice (`最上面那条`: the first); a question
    about what the list shows (`在哪开`, `这个体检的要带啥`) opens the notice it is about;
    anything else is handled as usual."""
    number = ctx.number()
    if number is None:  # `第二条的内容发给我看看`
        number = find_ordinal(ctx.text)
        found = ctx.services.router.command_in(ctx) if number is not None else None
        if isinstance(found, tuple) and "通知" not in found[0].words:
            return NEW_MESSAGE   # `…就是第二条，我想报名，…给我报上`: the wish, not the notice
    if number is None and ctx.mentions("first_one"):
        number = 1
    items = [i for i in _notice_views(ctx) if i["id"] in ctx.data.get("ids", [])]
    if number is None and ctx.services.router.command_in(ctx) is None:
        number = _asked_about(ctx, items) or _named(ctx, items)
    if number is None:
        return NEW_MESSAGE  # not an answer to the list: handled as if no list was shown
    if not 1 <= number <= len(items):   # `看看第二个` when one is listed: how many there are
        ctx.understood("reask")
        return ctx.reply("broadcasts/refused", code="no_such_notice", n=number,
                         total=len(items), prompt=ctx.state["prompt"])
    ctx.understood("通知公告")
    return _one(ctx, items, number)


def _pairs(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


def _named(ctx, items: list[dict]) -> int | None:
    """The notice a message names by its words (`重阳节那个`, `元旦那个通知给我念念`): the one
    alone in sharing the most words with it (two characters at a time, the words that
    point at a notice left out; two at least unless little else is said); None when no
    notice, or more than one, fits best."""
    phrasings = ctx.services.router.phrasings
    if not items or not ctx.mentions("notice_named"):
        return None
    said = phrasings.without(ctx.plain, "notice_named")
    pairs = _pairs(said)
    shared = [len(pairs & _pairs(phrasings.plain(item["content"]))) for item in items]
    best = max(shared)
    if best < 2 and len(said) > 6:   # `我家电话打不通了，给我看看` shares one word by chance
        return None
    return shared.index(best) + 1 if best and shared.count(best) == 1 else None


def _asked_about(ctx, items: list[dict]) -> int | None:
    """The notice a question after the list is about: the one that shares the most words
    with the question (two characters at a time), the newest of those (the list shows the
    newest first: `几点开始来着` is about the top one); None when it asks nothing."""
    if not ctx.mentions("notice_asked") or not items:
        return None
    pairs = _pairs(ctx.plain)
    shared = [sum(p in item["content"] for p in pairs) for item in items]
    return shared.index(max(shared)) + 1


handlers.dialog({PICK_STATE: pick_step})  # the notice list: a number opens one
