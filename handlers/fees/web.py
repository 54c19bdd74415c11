"""Console pages for fees: collection rate per party branch for a month, and a branch's
unpaid list (who still owes what) so staff can chase it. Both read the fee service."""
from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from bot import yinling
from bot.console import guard
from bot.console.pages import ConsolePage
from handlers.fees import service
from handlers.fees.config import load_config
from models.fees import FeeItem

logger = logging.getLogger(__name__)

blueprint = Blueprint("fees", __name__, url_prefix="/console/fees")
console_pages = [ConsolePage("fees.branches", "console/nav/fees.txt", order=20)]
PERIODS_SHOWN = 36  # the picker offers the last three years that have a ledger


def _now() -> datetime:
    return datetime.now(yinling().settings.zone)


def _fee_types() -> tuple[str, ...]:
    """The fee types the statistics count (config/fees.yaml `stats_fee_types`, as in chat)."""
    return load_config(yinling().settings).stats_fee_types


def chosen_period(raw: str | None, current: str) -> tuple[str, bool]:
    """(the period to show, whether the asked-for one was unusable); default the current one."""
    if raw is None or not raw.strip():
        return current, False
    period = service.parse_period(raw)
    return (period, False) if period else (current, True)


def period_choices(db, current: str, shown: str) -> list[dict]:
    """The months the picker offers: those with ledger rows, this month and the shown one."""
    have = set(db.scalars(select(FeeItem.period).distinct()
                          .order_by(FeeItem.period.desc()).limit(PERIODS_SHOWN)))
    periods = sorted(have | {current, shown}, reverse=True)
    return [service.period_view(p) for p in periods]


def branch_key(name: str | None) -> str:
    """A cadre's branch as the statistics group it (blank = no branch)."""
    return (name or "").strip() or service.NO_BRANCH


@blueprint.get("/")
def branches():
    """Collection rate per party branch for one month, lowest first, with the totals."""
    current = service.period_of(_now(), yinling().settings.zone)
    period, bad = chosen_period(request.args.get("period"), current)
    fee_types = _fee_types()
    with yinling().db.session() as db:
        rows, total = service.branch_stats(db, period, fee_types)
        choices = period_choices(db, current, period)
    return render_template("console/fees.html", rows=[r.view() for r in rows],
                           total=total.view(), p=service.period_view(period),
                           choices=choices, bad=bad, asked=request.args.get("period", ""),
                           fee_types=list(fee_types), current=current,
                           previous=service.previous_period(period))


@blueprint.get("/branch")
def branch():
    """One branch: its line of the statistics and each cadre who still owes, with the items."""
    name, raw = request.args.get("name"), request.args.get("period")
    period = service.parse_period(raw)
    if name is None or period is None:
        abort(404)
    key = branch_key(name)
    with yinling().db.session() as db:
        rows, _total = service.branch_stats(db, period, _fee_types())
        stat = next((r for r in rows if r.branch == key), None)
        owing = [_debtor(cadre, items, period)
                 for cadre, items in service.unpaid_by_cadre(db, period)
                 if branch_key(cadre.branch) == key]
    if stat is None and not owing:
        abort(404)
    logger.info("console: staff %s opened the unpaid list of a branch for %s",
                guard.user().id, period)
    return render_template("console/fees_branch.html", branch=key, p=service.period_view(period),
                           stat=stat.view() if stat else None, owing=owing)


def _debtor(cadre, items, period: str) -> dict:
    """One line of the unpaid list: who, how to reach them, what they owe (oldest first)."""
    return {"name": cadre.name, "phone": cadre.phone, "community": cadre.community,
            "owed_items": [service.item_view(i) for i in items],
            "this_month": sum(i.period == period for i in items),
            "owed": service.yuan(sum(i.amount_fen for i in items))}
