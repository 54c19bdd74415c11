"""Chat for people: binding (self and family), unbinding, staff invites, duty, and 人工."""
from __future__ import annotations

import math
import re

from sqlalchemy import select

from bot import roles
from bot.router import Handlers
from bot.text import CN_DIGITS, NAME_TO_NUMBER, chinese_number, mask_name, mask_phone
from handlers.people import service
from models import Binding, Cadre, InboundMessage, Staff
from models.people import HelpRequest, on_duty_openids, open_threads

handlers = Handlers("people")
# The binding dialogs' states, declared in one table below.
BIND_NAME, BIND_LAST4, BIND_SCAN, UNBIND_CONFIRM = ("bind.name", "bind.last4", "bind.scan",
                                                   "unbind.confirm")

RELATION_WORD = {"self": "绑定", "family": "家属绑定"}
MAX_NAME = 20
RECENT_TEXTS = 3
# A name as people answer the name question (欧阳建国; 阿依古丽·买买提 with its dot).
_NAME = re.compile(r"[\u4e00-\u9fa5]{2,4}|[\u4e00-\u9fa5]{1,8}·[\u4e00-\u9fa5·]{1,12}")
_NAME_SAID = re.compile(r"(?:叫|是)([\u4e00-\u9fa5]{2,4})$")   # `…，他叫张振华`
_NOT_IN_A_NAME = re.compile(r"[我你他她爸妈绑帮替给的不了没吗呢啊吧么啥怎弄找想要]")  # no name has them
_QUESTION = re.compile(r"[？?]|吗|还是|要不要|是不是|怎么|什么")   # asked back, not a name
_OWN_NAME = re.compile(r"^(?:我|俺)(?:叫|是)")   # `我叫张伟，是给我妈绑`: the sender's own name
_PHONE = re.compile(r"1[3-9][0-9]{9}")
# Words around a name and its digits said in one go (`王建国同志，手机尾号1001`).
_ONE_GO_WORDS = re.compile(NAME_TO_NUMBER + "$")


def _last4(text: str) -> str | None:
    """`1234`, `一二三四`, `0 1 2 3`, `1OO1` (letter O for zero), or a whole phone number said
    aloud -> the last four digits, else None."""
    text = re.sub(r"[一二两三四五六七八九]千[零〇一二两三四五六七八九十百]*",   # `一千零三`
                  lambda m: str(chinese_number(m.group(0))), text)
    spelled = "".join(str(CN_DIGITS[c]) if c in CN_DIGITS else c for c in text)
    spelled = re.sub(r"(?<=[\dOo])[Oo]|[Oo](?=[\dOo])", "0", spelled)
    digits = re.sub(r"\D", "", spelled)
    words = re.sub(r"[\d\s。，,.!！:：]", "", spelled)
    if re.fullmatch(r"1[3-9][0-9]{9}", digits) and len(words) <= 8:
        return digits[-4:]  # `他的手机是13800001003`
    return digits if len(digits) == 4 and not words else None


def _split(args: str) -> tuple[str, str | None]:
    """`张三 1234` / `张三1234` / `张三手机尾号1234` / `张三 13800001234` / `13800001234 张三`
    -> ('张三', '1234'); a name alone -> (name, None)."""
    said = args.strip()
    m = re.fullmatch(r"(?:1[3-9]\d{5})?(\d{4})[\s,，:：]*([^\d]+)", said)   # the number first
    if m and _looks_like_name(_ONE_GO_WORDS.sub("", m.group(2)).strip()):
        return _ONE_GO_WORDS.sub("", m.group(2)).strip(), m.group(1)
    m = re.fullmatch(r"(.*?)[\s,，:：]*(?:1[3-9]\d{5})?([0-9０-９零〇一二两三四五六七八九幺洞壹贰叁肆伍陆柒捌玖]{4})",
                     said)
    name = _ONE_GO_WORDS.sub("", m.group(1)).strip() if m else ""
    if name and not re.search(r"\d", name) and _last4(m.group(2)):
        return name, _last4(m.group(2))
    return said, None


def _spoken_name(words: str) -> str:
    """`我叫李秀英` / `他叫张振华` / `名字是…` said aloud -> the name itself."""
    m = re.fullmatch(r"(?:我|他|她|老人|我爸|我妈)?(?:叫|的名字是|名字叫|名字是|是)(.{2,6})",
                     re.sub(r"[\s。，,.!！]", "", words))
    return m.group(1) if m else words


def _looks_like_name(words: str) -> bool:
    """Two to four characters (or a name with its dot) and none a name never has."""
    return bool(_NAME.fullmatch(words)) and not _NOT_IN_A_NAME.search(words)


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME and not re.search(r"[0-9]", name)


# ---- binding -------------------------------------------------------------------------------
def _refuse_if_bound_or_locked(ctx, relation: str) -> str | None:
    """The answer for an openid that already is a cadre itself or is locked out, else None.

    One account may act for several cadres (a child for both parents, a couple on one
    phone), so only a second *own* binding is refused here.
    """
    own = ctx.db.scalar(select(Binding).where(Binding.openid == ctx.openid,
                                              Binding.relation == "self"))
    if relation == "self" and own is not None:
        return ctx.reply("people/already_bound", who=own.cadre.name, family=False)
    until = service.locked_until(ctx.db, ctx.openid, ctx.now)
    if until is not None:
        return _locked(ctx, until)
    return None


def _locked(ctx, until) -> str:
    minutes = max(1, math.ceil((until - ctx.now).total_seconds() / 60))
    return ctx.reply("people/locked", minutes=minutes)


def _start(ctx, args: str, relation: str) -> str:
    args = "" if args in ("身份", "本人") else args  # the menu label typed out
    if relation == "self" and args and ctx.mentions("binding_for"):  # `绑定我妈，我是她女儿`
        relation = "family"
    refused = _refuse_if_bound_or_locked(ctx, relation)
    if refused:
        return refused
    name, last4 = _split(args) if args else ("", None)
    if name and not _looks_like_name(name):
        name = ""  # a sentence or `我妈`, not a name: the name is asked for
    data = {"relation": relation}
    if name and last4:
        return _attempt(ctx, relation, name, last4)
    if name and _valid_name(name):
        return ctx.ask(BIND_LAST4, "people/ask_last4", data={**data, "name": name})
    return ctx.ask(BIND_NAME, "people/ask_name", data=data, family=relation == "family")


@handlers.command("绑定", menu=True, order=10, hide_for={roles.CADRE, roles.STAFF})
def bind_self(ctx, args):
    """Bind this openid to a cadre of the roster: `绑定` or `绑定 张三 1234`."""
    return _start(ctx, args, "self")


@handlers.command("家属绑定", menu=True, order=11, hide_for={roles.CADRE, roles.STAFF})
def bind_family(ctx, args):
    """Bind this openid as a family member acting for a cadre: `家属绑定 张三 1234`."""
    return _start(ctx, args, "family")


def step_name(ctx):
    """The cadre's name (or name and digits in one go)."""
    for relation, word in sorted(RELATION_WORD.items(), key=lambda kv: -len(kv[1])):
        if ctx.text.startswith(word):  # `绑定 张三 1234` typed again inside the dialog
            return _start(ctx, ctx.text[len(word):].strip(), relation)
    if _PHONE.fullmatch(re.sub(r"\s", "", ctx.text)):  # the whole number, at the name question
        return _explain(ctx, digits=True)
    name, last4 = _split(ctx.text)
    if name and last4:
        ctx.understood("content")
        return _attempt(ctx, ctx.data["relation"], name, last4)
    if ctx.says_only("quit") or ctx.leads_with("quit") or ctx.ends_with("quit"):  # `不绑了，…`
        return ctx.services.router.quit(ctx)
    if ctx.kind is not None and not _looks_like_name(ctx.plain):   # `嗯嗯好的` is no name
        return ctx.reask()   # (`老王` is one): a kind word, the question again
    if ctx.data["relation"] == "self" and ctx.mentions("binding_for"):
        return _for_family(ctx)   # `我是帮我爸绑的，他叫张振华`
    name = _spoken_name(name)
    if not _NAME.fullmatch(name) or len(name) > 3:  # `我要找人工`, `查下党费`: not a name
        found = ctx.services.router.command_in(ctx, strong_only=True)
        if isinstance(found, tuple):
            ctx.end()
            return ctx.services.router.run_found(ctx, *found)
        if not _NAME.fullmatch(re.sub(r"\s+", "", name)):  # a sentence: a name in it, or a wish
            said = _name_in(ctx, family=ctx.data["relation"] == "family")   # `我是刘桂兰，…`
            if said is not None:
                name = said
            else:
                asked = ctx.services.router.ask_about(ctx, strong_only=False)  # `能不能找个人帮我`
                if asked is not None:
                    return asked
                if _QUESTION.search(ctx.raw_text or ctx.text):
                    return _explain(ctx)  # `是填我的名字还是我妈的名字？`: no wrong try
    elif isinstance(ctx.services.router.command_in(ctx, strong_only=True), tuple):
        asked = ctx.services.router.ask_about(ctx)  # `找人工` is shaped like a name, is none
        if asked is not None:
            return asked
    if not _valid_name(name):
        return ctx.reask()
    ctx.understood("content")
    return ctx.ask(BIND_LAST4, "people/ask_last4", data={**ctx.data, "name": name})


def _for_family(ctx) -> str:
    """At the name question of binding oneself, the sender says they bind for a parent:
    family binding, with the name when they said it (`…，他叫张振华`)."""
    data = {**ctx.data, "relation": "family"}
    name = _name_in(ctx, family=True)
    if name is None:
        ctx.understood("家属绑定")
        return ctx.ask(BIND_NAME, "people/ask_name", data=data, family=True)
    ctx.understood("content")
    return ctx.ask(BIND_LAST4, "people/ask_last4", data={**data, "name": name})


def _name_in(ctx, family: bool = False) -> str | None:
    """The name in an answer that says more (`我妈叫刘桂兰，桂花的桂`, `李秀英，我是她闺女`):
    the first clause that says it (`叫…`) or is only a name; None when none does. For a
    family binding the sender's own name (`我叫张伟，…`) is not the one asked for."""
    phrasings = ctx.services.router.phrasings
    for clause in phrasings.clauses(ctx.raw_text or ctx.text):
        if family and _OWN_NAME.match(clause):
            continue
        m = _NAME_SAID.search(clause)
        name = m.group(1) if m else clause
        if _looks_like_name(name) and \
                not phrasings.only(name, "binding_for"):
            return name
    return None


def step_last4(ctx):
    """The last four digits of the cadre's phone number."""
    last4 = _last4(ctx.text)
    if last4 is None:  # `尾号三七二一`, `后四位是0526`: the digits with words around them
        last4 = _last4(ctx.without("digits_said"))
    phrasings = ctx.services.router.phrasings
    corrected = phrasings.after_correction(ctx.raw_text or ctx.text)
    if corrected is not None:  # `尾号1002，哦不对，那是我闺女的，我的是1001`: the last clause
        clause = phrasings.last_clause(corrected) or phrasings.plain(corrected)
        last4 = _last4(phrasings.without(clause, "digits_said")) or last4
    if last4 is None:  # `后四位1002吧，我记不太清了`, `1001，是我爸的号`: the one clause of digits
        said = {d for clause in phrasings.clauses(ctx.raw_text or ctx.text)
                if (d := _last4(phrasings.without(clause, "digits_said")))}
        last4 = said.pop() if len(said) == 1 else None
    if last4 is None:
        return _explain(ctx) if _QUESTION.search(ctx.raw_text or ctx.text) else ctx.reask()
    ctx.understood("content")
    return _attempt(ctx, ctx.data["relation"], ctx.data["name"], last4)


def _explain(ctx, digits: bool = False) -> str:
    """A question back at a binding question (`手机号是填我的还是我爸的？`): whose name or
    number is meant, and the question again; no wrong try is counted. A wish in it
    (`我不记得了，能找个人帮我弄吗`) is run instead, as any answer that is none."""
    if isinstance(ctx.services.router.command_in(ctx), tuple):
        return ctx.reask()
    return ctx.services.router.explain(ctx, digits=digits)


def _attempt(ctx, relation: str, name: str, last4: str) -> str:
    """Check name + digits against the roster; bind, or count a wrong try."""
    until = service.locked_until(ctx.db, ctx.openid, ctx.now)
    if until is not None:
        ctx.end()
        return _locked(ctx, until)
    named = service.named_cadres(ctx.db, name)
    if service.binding_paused(ctx.db, (c.id for c in named)):
        ctx.end()
        ctx.log("binding refused: paused for a cadre named in the answer")
        return ctx.reply("people/bind_paused")
    found = [c for c in named if c.phone.endswith(last4)]
    if len(found) != 1:
        return _wrong(ctx, relation, named)
    ctx.end()
    return _bind_checked(ctx, found[0], relation)


def _bind_checked(ctx, cadre, relation: str, code=None) -> str:
    """Bind under every rule (one own binding per cadre, also in a race), use up the QR
    code that led here, announce it, and say so."""
    if any(b.openid == ctx.openid for b in cadre.bindings):
        return ctx.reply("people/already_bound", who=cadre.name, family=relation == "family")
    taken = relation == "self" and service.self_binding_of_cadre(ctx.db, cadre.id)
    binding = None if taken else service.bind(ctx.db, ctx.openid, cadre, relation, ctx.now)
    if binding is None:
        ctx.log("self binding refused: cadre %s already bound elsewhere", cadre.id)
        return ctx.reply("people/taken", who=mask_name(cadre.name))
    if code is not None:
        code.used_at, code.used_by = ctx.now, ctx.openid
    _announce(ctx, binding, cadre)
    ctx.roles |= {roles.CADRE} | ({roles.FAMILY} if relation == "family" else set())
    return ctx.menu(ctx.reply("people/bound", who=cadre.name, family=relation == "family"))


def _announce(ctx, binding, cadre) -> None:
    """Tell the cadre's other accounts (who may undo it) and on-duty staff of a new binding."""
    family = binding.relation == "family"
    for openid in service.announce(ctx.db, binding, ctx.now):
        ctx.push(openid, "people/binding_announced", who=cadre.name, family=family)
    for openid in on_duty_openids(ctx.db):
        ctx.push(openid, "people/binding_staff_notice", who=mask_name(cadre.name),
                 phone=mask_phone(cadre.phone), family=family, tail=ctx.openid[-4:])


def _wrong(ctx, relation: str, named) -> str:
    """Count a wrong answer for this account and against each cadre it named."""
    for cadre in service.count_cadre_failure(ctx.db, named, ctx.today, ctx.now):
        for openid in on_duty_openids(ctx.db):
            ctx.push(openid, "people/bind_paused_staff", who=cadre.name, phone=cadre.phone)
    left = service.record_failure(ctx.db, ctx.openid, ctx.now)
    ctx.log("binding answer did not match the roster (%s tries left)", left)
    if service.binding_paused(ctx.db, (c.id for c in named)):
        ctx.end()
        return ctx.reply("people/bind_paused")
    if left == 0:
        ctx.end()
        return ctx.reply("people/locked", minutes=int(service.LOCK_FOR.total_seconds() // 60))
    return ctx.ask(BIND_NAME, "people/wrong", data={"relation": relation}, left=left,
                   word=RELATION_WORD[relation])


# ---- binding by a personal QR code --------------------------------------------------------------


@handlers.meaning("scan_bind")
def scan_bind(ctx, token: str):
    """A personal QR code was scanned: one question (self or family), then the binding."""
    code = service.usable_bind_code(ctx.db, token, ctx.now)
    if code is None:
        ctx.log("binding QR code refused (unknown, used or expired)")
        return ctx.reply("people/scan_refused")
    cadre = ctx.db.get(Cadre, code.cadre_id)
    return ctx.ask(BIND_SCAN, "people/scan_confirm", data={"token": token},
                   who=mask_name(cadre.name))


def scan_step(ctx):
    """1 binds as the cadre, 2 as family (the code is then used up)."""
    relation = ctx.choose({1: "self", 2: "family"}, "self", "family", note=False)
    if relation is None:
        return ctx.reask()
    token = ctx.data.get("token", "")
    ctx.end()
    code = service.usable_bind_code(ctx.db, token, ctx.now)
    if code is None:
        return ctx.reply("people/scan_refused")
    ctx.understood("绑定" if relation == "self" else "家属绑定")
    return _bind_checked(ctx, ctx.db.get(Cadre, code.cadre_id), relation, code)


@handlers.command("不是我", "撤销绑定", "撤销", takes=r"(?s)(?!说|讲).*")   # `不是我说，…`
def undo_binding(ctx, args):
    """`不是我`: undo the binding last announced to this account, and tell staff."""
    notice = service.undo_announced(ctx.db, ctx.openid, ctx.now)
    if notice is None:
        return ctx.reply("people/undo_nothing")
    cadre = ctx.db.get(Cadre, notice.cadre_id)
    ctx.push(notice.bound_openid, "people/binding_undone_user")
    for openid in on_duty_openids(ctx.db):
        ctx.push(openid, "people/binding_undone_staff", who=mask_name(cadre.name),
                 phone=mask_phone(cadre.phone), family=notice.relation == "family",
                 tail=notice.bound_openid[-4:])
    ctx.log("undid an announced binding to cadre %s", cadre.id)
    return ctx.reply("people/binding_undone", who=cadre.name)


@handlers.command("解除暂停", "恢复绑定", role=roles.STAFF)
def lift_pause(ctx, args):
    """Staff: `解除暂停 手机号` lets binding to that cadre go on after a pause."""
    phone = re.sub(r"\D", "", args)
    cadre = ctx.db.scalar(select(Cadre).where(Cadre.phone == phone)) if phone else None
    named = service.named_cadres(ctx.db, args.strip()) if not phone and args.strip() else []
    cadre = cadre or (named[0] if len(named) == 1 else None)  # `王建国那个绑定被锁了，给放开`
    if cadre is None:
        return ctx.reply("people/lift_pause_usage")
    lifted = service.lift_pause(ctx.db, cadre.id)
    ctx.log("lifted the binding pause of cadre %s: %s", cadre.id, lifted)
    return ctx.reply("people/pause_lifted", who=cadre.name, lifted=lifted)


# ---- unbinding -----------------------------------------------------------------------------
@handlers.command("解绑", "解除绑定", bound_only=True)
def unbind(ctx, args):
    """Ask to confirm, then remove this openid's binding."""
    binding = service.binding_of(ctx.db, ctx.openid)
    if binding is None:
        return ctx.reply("people/not_bound")
    family = binding.relation == "family"
    return ctx.ask(UNBIND_CONFIRM, "people/unbind_confirm",
                   data={"binding": binding.id, "family": family},
                   who=binding.cadre.name, family=family)


def step_unbind(ctx):
    """`1`/`确认` removes the binding; `0` (router) cancels."""
    choice = ctx.choose({1: "yes"}, "yes", "no", careful=True)   # nothing undone on a question
    if choice is None:
        return ctx.reask()
    if choice == "no":
        ctx.end()
        return ctx.reply("core/cancelled", menu=ctx.menu())
    wanted = ctx.data.get("binding")
    ctx.end()
    binding = service.binding_of(ctx.db, ctx.openid)
    if binding is None or binding.id != wanted:
        return ctx.reply("people/not_bound")
    service.unbind(ctx.db, binding, ctx.now)
    return ctx.reply("people/unbound")


# Binding by name and last four digits, by a QR scan, and unbinding.
handlers.dialog({BIND_NAME: step_name, BIND_LAST4: step_last4, BIND_SCAN: scan_step,
                 UNBIND_CONFIRM: step_unbind})


# ---- staff ---------------------------------------------------------------------------------
@handlers.command("工作人员", takes=r"[A-Za-z0-9\s:：,，。.零〇一二三四五六七八九幺两]*")
def become_staff(ctx, args):
    """`工作人员 CODE` redeems an invite from `flask --app bot staff invite`."""
    code = args.replace(" ", "")
    if not code:
        return ctx.reply("people/invite_missing")
    outcome = service.redeem(ctx.db, ctx.openid, code, ctx.now)
    if outcome.refusal:
        ctx.log("invite refused (%s)", outcome.refusal)
        return ctx.reply("people/invite_refused", reason=outcome.refusal)
    ctx.roles |= {roles.STAFF} | ({roles.SUPERVISOR} if outcome.staff.role == "supervisor"
                                  else set())
    return ctx.reply("people/staff_welcome", staff_name=outcome.staff.name,
                     supervisor=outcome.staff.role == "supervisor")


def _set_duty(ctx, on: bool) -> str:
    staff = service.staff_of(ctx.db, ctx.openid)
    staff.on_duty = on
    ctx.log("on duty %s", on)
    return ctx.reply("people/duty", on=on)


@handlers.command("值班", role=roles.STAFF, menu=True, order=85, hide_for={roles.ON_DUTY})
def duty_on(ctx, args):
    """Staff start receiving pings for new tickets and 人工."""
    return _set_duty(ctx, True)


@handlers.command("下班", role=roles.STAFF, menu=True, order=86, show_for=roles.ON_DUTY)
def duty_off(ctx, args):
    """Staff stop receiving pings."""
    return _set_duty(ctx, False)


@handlers.command("人工", "人工服务", "转人工", menu=True, order=90, hide_for={roles.STAFF},
                  takes=r"(?s)(?!智能|作|费).*")   # `人工智能现在真厉害` asks for no one
def human(ctx, args):
    """Tell on-duty staff (or the staff member already answering) who wants a person; what
    the user says in the next half hour joins the request (one open request per user)."""
    said = ctx.words_after(("人工服务", "转人工", "人工"), args)
    return _ask_person(ctx, said)


def _ask_person(ctx, said: str, *, voice: bool = False) -> str:
    """Open (or join) this user's 人工 request with their words, and tell staff."""
    cadre = ctx.cadre
    request, owner, joined = service.open_help(ctx.db, ctx.openid, cadre.id if cadre else None,
                                               ctx.on_behalf, said[:500], ctx.now)
    recording = _keep_recording(ctx, request)
    staff = [owner.openid] if owner else [o for o in on_duty_openids(ctx.db) if o != ctx.openid]
    who = {"name": mask_name(cadre.name) if cadre else None,
           "phone": mask_phone(cadre.phone) if cadre else None,
           "family": ctx.on_behalf, "openid": ctx.openid}
    recent = [] if joined else _recent_texts(ctx)
    for openid in staff:
        ctx.push(openid, "people/human_staff", who=who, recent=recent, said=said,
                 number=request.id, follow_up=owner is not None, joined=joined, voice=voice,
                 recording=recording)
    ctx.follower.thread_kind, ctx.follower.thread_ref = "help", request.id
    ctx.follower.thread_staff_id = owner.id if owner else None
    ctx.follower.thread_until = ctx.now + service.HELP_LISTENS
    if cadre is not None:
        service.record_action(ctx.db, "human", ctx)
    ctx.log("asked for a person (request %s, joined %s); %s staff told", request.id, joined,
            len(staff))
    return ctx.reply("people/human_user", nobody=not staff, follow_up=owner is not None,
                     joined=joined, voice=voice)


@handlers.meaning("thread")
def thread(ctx):
    """Words after a staff member wrote (a ticket reply, an answer to 人工) or after the
    user's own 人工 go to that conversation and its staff member; `谢谢` is passed on
    and answered kindly. None when no thread is open."""
    found = ctx.follower.open_thread(ctx.now)
    if found is None:
        return None
    kind, ref, staff_id = found
    words = (ctx.raw_text or "").strip()[:500] or ctx.reply("people/voice_unheard")
    thanks = ctx.kind
    if kind == "ticket" and ctx.actor is not None:
        return _to_ticket(ctx, ref, staff_id, words, thanks)
    request = ctx.db.get(HelpRequest, ref) if kind == "help" else None
    if request is None:
        ctx.follower.close_thread()
        return None
    service.join_help(request, words, ctx.now)
    recording = _keep_recording(ctx, request)
    withdrawn = ctx.says_only("quit") or ctx.says_only("no") or ctx.leads_with("quit")
    # `算了，不用了`, `不好意思点错了`, `没事了，我自己弄明白了`: staff hear it, the thread ends
    if withdrawn:
        ctx.follower.close_thread()
        ctx.understood("quit")
    writer = ctx.db.get(Staff, staff_id) if staff_id else None
    for openid in service.help_staff(ctx.db, request, staff_id):
        ctx.push(openid, "people/thread_staff", number=request.id, said=words,
                 who=mask_name(ctx.cadre.name) if ctx.cadre else ctx.openid,
                 recording=recording)
    ctx.log("words joined help request %s", request.id)
    if withdrawn:
        return ctx.reply("people/help_withdrawn", staff_name=writer.name if writer else None)
    return ctx.reply("people/thread_passed", staff_name=writer.name if writer else None,
                     ticket=None, kind=thanks, voice=recording)


def _keep_recording(ctx, request: HelpRequest) -> bool:
    """A voice message joining a 人工 request: its recording is kept for staff to hear."""
    if ctx.msg_type != "voice":
        return False
    service.keep_recording(ctx, request, ctx.message.media_id)
    return True


def _to_ticket(ctx, number: int, staff_id: int | None, words: str, thanks) -> str:
    """The words become a note on the ticket the staff member wrote about."""
    from handlers.issues import service as issues

    recording = ({"kind": "voice", "media_id": (ctx.message.media_id or "")[:128] or None}
                 if ctx.msg_type == "voice" else None)   # kept with the ticket (bot/media.py)
    try:
        ticket, _ = issues.add_note(ctx, ctx.actor, number, words, recording)
    except issues.Refusal:
        ctx.follower.close_thread()
        return None
    writer = ctx.db.get(Staff, staff_id) if staff_id else None
    if writer is None or not writer.on_duty:  # off duty: those on duty see it too
        for openid in on_duty_openids(ctx.db):
            if writer is None or openid != writer.openid:
                ctx.push(openid, "people/thread_staff", number=None, ticket=ticket.id,
                         said=words, who=mask_name(ctx.cadre.name),
                         recording=recording is not None)
    ctx.log("words passed on to ticket %s", ticket.id)
    return ctx.reply("people/thread_passed", staff_name=writer.name if writer else None,
                     ticket=ticket.id, kind=thanks, voice=recording is not None)


@handlers.meaning("voice_unclear")
def voice_unclear(ctx):
    """Voice WeChat could not turn into words goes to a person, not to the menu."""
    if ctx.follower.open_thread(ctx.now) is not None:
        passed = thread(ctx)
        if passed is not None:
            return passed
    return _ask_person(ctx, ctx.reply("people/voice_unheard"), voice=True)


@handlers.command("答复", role=roles.STAFF)
def answer_human(ctx, args):
    """`答复 N 内容`: staff answer 人工 request N; the user who asked receives it by chat."""
    m = re.match(r"\s*([0-9零〇一二两三四五六七八九十]+)\s*[号:：,，]?\s*(.*)", args, re.S)
    number = ctx.number(m.group(1)) if m else None
    words = m.group(2).strip() if m else ""
    if m is None:  # words and no number (`刚才要人工的那位，跟他说…`): the only one waiting
        number, words = service.only_unanswered_help(ctx.db), args.strip()
    if number is None or not words:
        return ctx.reply("people/human_answer_usage")
    staff = service.staff_of(ctx.db, ctx.openid)
    done = service.answer_help(ctx.db, number, staff, ctx.now)
    if done.request is None:
        return ctx.reply("people/human_answer_unknown", number=number)
    ctx.push(done.request.openid, "people/human_answer", staff_name=staff.name, text=words)
    open_threads(ctx.db, [done.request.openid], "help", done.request.id, staff.id,
                 ctx.now + service.HELP_CONTINUES)
    ctx.log("answered help request %s", number)
    cadre = ctx.db.get(Cadre, done.request.cadre_id) if done.request.cadre_id else None
    return ctx.reply("people/human_answered", number=number, earlier=done.earlier,
                     who=mask_name(cadre.name) if cadre else None)


def _recent_texts(ctx) -> list[str]:
    """The user's last few text messages before this one, oldest first."""
    query = (select(InboundMessage.content)
             .where(InboundMessage.openid == ctx.openid, InboundMessage.msg_type == "text",
                    InboundMessage.content.is_not(None)))
    if ctx.inbound_id is not None:
        query = query.where(InboundMessage.id != ctx.inbound_id)
    rows = ctx.db.scalars(query.order_by(InboundMessage.id.desc()).limit(RECENT_TEXTS)).all()
    return [r[:200] for r in reversed(rows)]


# ---- roles ---------------------------------------------------------------------------------
@handlers.roles
def group_admin_role(openid):
    """GROUP_ADMIN for openids bound (self) to a cadre who administers any group."""
    return {roles.GROUP_ADMIN: service.group_admin_clause(openid)}
