"""Chat for fees: a cadre's status (`党费`), staff marking paid (`已缴`), and `党费统计`."""
from __future__ import annotations

import re

from bot import roles
from bot.router import Handlers
from bot.text import digits_for_numerals, mask_name
from handlers.fees import service
from handlers.fees.config import load_config
from handlers.fees.service import FeeRefusal, item_view, period_view, yuan
from handlers.people.service import named_cadres
from models.people import recipients_of

handlers = Handlers("fees")

SPLIT = re.compile(r"[\s,，、;；:：]+")
PHONE = re.compile(r"1[0-9]{10}")
MONTH_ONLY = re.compile(r"(\d{1,2})月份?")


def _config(ctx):
    return load_config(ctx.services.settings)


def _current(ctx) -> str:
    return service.period_of(ctx.now, ctx.services.settings.zone)


# ---- cadres and family -----------------------------------------------------------------------
@handlers.command("党费", "缴费", click="MENU_FEES", role=roles.CADRE, menu=True,
                  order=30)
def fee_status(ctx, args):
    """This and last month's items, older arrears, the total owed, and how to pay."""
    cadre = ctx.cadre
    status = service.fee_status(ctx.db, cadre.id, _current(ctx))
    ctx.log("fee status: %d+%d items, %d in arrears", len(status.this_month),
            len(status.last_month), len(status.arrears))
    return ctx.reply("fees/status", cadre_name=cadre.name, on_behalf=ctx.on_behalf,
                     empty=status.empty,
                     current=period_view(status.current), previous=period_view(status.previous),
                     this_month=[item_view(i) for i in status.this_month],
                     last_month=[item_view(i) for i in status.last_month],
                     arrears=[item_view(i) for i in status.arrears],
                     owed=yuan(status.owed_fen) if status.owed_fen else None,
                     how_to_pay=_config(ctx).how_to_pay)


# ---- staff -----------------------------------------------------------------------------------
@handlers.refusal
def _refused(ctx, refusal: FeeRefusal) -> str:
    return ctx.reply("fees/refused", code=refusal.code, **refusal.values)


def staff_command(*words: str, **options):
    """Register a staff command (its FeeRefusals answer through `_refused`)."""
    return handlers.command(*words, role=roles.STAFF, **options)


def parse_mark_args(args: str, current: str | None = None,
                    named=None) -> tuple[str, str, str | None]:
    """`13800001001 2026-11 [党费]` -> (phone, period, fee type); FeeRefusal when unusable.
    With `named` (name -> the cadres of that name), a cadre's name stands for the phone;
    with `current` (this period), `11月` is the latest November that has begun."""
    parts = [p for p in SPLIT.split(args.strip()) if p]
    if not parts:
        raise FeeRefusal("mark_usage")
    phone = parts[0].replace("-", "")
    if not PHONE.fullmatch(phone):
        phone = _phone_of_name(parts[0], named)
    if len(parts) < 2:
        raise FeeRefusal("need_period", phone=phone)
    period = service.parse_period(parts[1]) or _month_only(parts[1], current)
    if period is None:
        raise FeeRefusal("bad_period", value=parts[1])
    fee_type = "".join(parts[2:]) or None
    return phone, period, fee_type


def _months_named(ctx, args: str) -> str:
    """`上个月`, `这个月` (phrasings.yaml month_last/month_this) as the periods they name."""
    answers, current = ctx.services.router.phrasings.answers, _current(ctx)
    for group, period in (("month_this", current),
                          ("month_last", service.previous_period(current))):
        for word in sorted(answers.get(group, ()), key=len, reverse=True):
            args = args.replace(word, f" {period} ")
    return args


def _phone_of_name(word: str, named) -> str:
    """The phone of the one cadre with this name (`王建国11月党费交了`)."""
    cadres = named(word) if named is not None and not any(c.isdigit() for c in word) else None
    if not cadres:
        raise FeeRefusal("bad_phone", value=word) if cadres is None else \
            FeeRefusal("unknown_name", name=word)
    if len(cadres) > 1:
        raise FeeRefusal("same_name", name=word, count=len(cadres))
    return cadres[0].phone


def _month_only(text: str, current: str | None) -> str | None:
    """`11月` said without a year: this year's if it has begun, else last year's."""
    m = MONTH_ONLY.fullmatch(digits_for_numerals(text))
    if m is None or current is None or not 1 <= int(m.group(1)) <= 12:
        return None
    year, now_month = (int(x) for x in current.split("-"))
    month = int(m.group(1))
    return f"{year if month <= now_month else year - 1:04d}-{month:02d}"


@staff_command("已缴")
def mark_paid(ctx, args):
    """`已缴 手机号 YYYY-MM [费用类型]`: that month's unpaid items are paid today."""
    phone, period, fee_type = parse_mark_args(
        _months_named(ctx, args), _current(ctx), lambda name: named_cadres(ctx.db, name))
    staff = service.staff_by_openid(ctx.db, ctx.openid)
    today = ctx.now.astimezone(ctx.services.settings.zone).date()
    marked = service.mark_paid(ctx.db, phone, period, staff.name if staff else ctx.openid,
                               ctx.openid, today, ctx.now, fee_type)
    items = [item_view(i) for i in marked.items]
    relations = service.relations_of(ctx.db, marked.cadre.id)
    told = 0
    for openid in recipients_of(ctx.db, marked.cadre.id):
        if openid != ctx.openid and ctx.push(
                openid, "fees/paid_notice", kind="scheduled", items=items,
                total=yuan(marked.total_fen), cadre_name=marked.cadre.name,
                family=relations.get(openid) == "family", today=today) is not None:
            told += 1
    ctx.log("marked %d fee item(s) paid for %s", len(items), mask_name(marked.cadre.name))
    return ctx.reply("fees/marked", name=marked.cadre.name, phone=marked.cadre.phone,
                     items=items, total=yuan(marked.total_fen), today=today, told=told,
                     **period_view(period))


@staff_command("党费统计", menu=True, order=70)
def statistics(ctx, args):
    """Collection rate per party branch for this month (or `党费统计 2026-10`)."""
    period = _current(ctx)
    if args.strip():
        period = service.parse_period(args)
        if period is None:
            raise FeeRefusal("bad_period", value=args.strip())
    fee_types = _config(ctx).stats_fee_types
    rows, total = service.branch_stats(ctx.db, period, fee_types)
    return ctx.reply("fees/stats", rows=[r.view() for r in rows], total=total.view(),
                     fee_types=list(fee_types), **period_view(period))
