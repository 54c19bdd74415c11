"""Fee ledger services: periods, a cadre's status, marking paid, branch statistics, arrears.

Functions take a session and primitives, so chat, jobs, the CLI and the console share them.
"""
from __future__ import annotations

import logging
import re
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from bot import errors
from bot.text import mask_name, mask_phone
from models.fees import PAID_BY_CHAT, FeeEvent, FeeItem
from models.people import Binding, Cadre, Staff

logger = logging.getLogger(__name__)

PERIOD_RE = re.compile(r"(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*月?|(\d{2}))")
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
NO_BRANCH = ""  # statistics key for cadres without a party branch


class FeeRefusal(errors.Refusal):
    """A staff request that cannot be done; `code` picks the sentence in fees/refused."""

    template = "fees/refused"


# ---- periods and money ---------------------------------------------------------------------
def parse_period(text) -> str | None:
    """`2026-11`, `2026/1`, `2026年11月`, `202611`, a date -> '2026-11'; else None."""
    if isinstance(text, (date, datetime)):
        year, month = text.year, text.month
    else:
        m = PERIOD_RE.fullmatch(str(text or "").strip())
        if not m:
            return None
        year, month = int(m.group(1)), int(m.group(2) or m.group(3))
    if not (EARLIEST_YEAR <= year <= LATEST_YEAR and 1 <= month <= 12):
        return None
    return f"{year:04d}-{month:02d}"


def period_of(moment: datetime, zone) -> str:
    """The period (local month) an instant falls in."""
    local = moment.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def previous_period(period: str) -> str:
    """The month before a period."""
    year, month = (int(p) for p in period.split("-"))
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def yuan(fen: int) -> str:
    """5000 -> '50.00' (money is stored in fen)."""
    return f"{fen // 100}.{fen % 100:02d}"


def period_view(period: str) -> dict:
    """{'period', 'year', 'month'} for templates (`2026年11月`)."""
    year, month = (int(p) for p in period.split("-"))
    return {"period": period, "year": year, "month": month}


def item_view(item: FeeItem) -> dict:
    """What templates show of one ledger item."""
    return {**period_view(item.period), "type": item.fee_type, "amount": yuan(item.amount_fen),
            "paid": item.paid, "paid_on": item.paid_on}


# ---- a cadre's status ----------------------------------------------------------------------
@dataclass
class FeeStatus:
    """A cadre's items for this and last month, older unpaid items, and the total owed."""

    current: str
    previous: str
    this_month: list[FeeItem] = field(default_factory=list)
    last_month: list[FeeItem] = field(default_factory=list)
    arrears: list[FeeItem] = field(default_factory=list)

    @property
    def owed_fen(self) -> int:
        """Everything unpaid up to the current period."""
        return sum(i.amount_fen for i in self.this_month + self.last_month + self.arrears
                   if not i.paid)

    @property
    def empty(self) -> bool:
        """Nothing on record for the two months and no arrears."""
        return not (self.this_month or self.last_month or self.arrears)


def _order(query):
    return query.order_by(FeeItem.period, FeeItem.fee_type, FeeItem.id)


def fee_status(session, cadre_id: int, current: str) -> FeeStatus:
    """This cadre's ledger as the status answer shows it."""
    status = FeeStatus(current, previous_period(current))
    items = session.scalars(_order(select(FeeItem).where(
        FeeItem.cadre_id == cadre_id, FeeItem.period <= current))).all()
    for item in items:
        if item.period == current:
            status.this_month.append(item)
        elif item.period == status.previous:
            status.last_month.append(item)
        elif not item.paid:
            status.arrears.append(item)
    return status


def unpaid_by_cadre(session, upto: str) -> list[tuple[Cadre, list[FeeItem]]]:
    """Active cadres with unpaid items up to a period, each with those items (oldest first)."""
    rows = session.execute(
        select(Cadre, FeeItem).join(FeeItem, FeeItem.cadre_id == Cadre.id)
        .where(Cadre.to_be_pushed(), FeeItem.paid.is_(False), FeeItem.period <= upto)
        .order_by(Cadre.id, FeeItem.period, FeeItem.fee_type, FeeItem.id)).all()
    grouped: dict[int, tuple[Cadre, list[FeeItem]]] = {}
    for cadre, item in rows:
        grouped.setdefault(cadre.id, (cadre, []))[1].append(item)
    return list(grouped.values())


def relations_of(session, cadre_id: int) -> dict[str, str]:
    """{openid: 'self' | 'family'} of everyone bound to a cadre (to word pushes per reader)."""
    return dict(session.execute(select(Binding.openid, Binding.relation)
                                .where(Binding.cadre_id == cadre_id)).all())


# ---- staff: marking paid -------------------------------------------------------------------
@dataclass
class Marked:
    """What `已缴` did: the cadre, the period and the items now paid."""

    cadre: Cadre
    period: str
    items: list[FeeItem]

    @property
    def total_fen(self) -> int:
        """Sum of the items just marked."""
        return sum(i.amount_fen for i in self.items)


def staff_by_openid(session, openid: str) -> Staff | None:
    """The active staff member behind an openid."""
    return session.scalar(select(Staff).where(Staff.openid == openid, Staff.active.is_(True)))


def mark_paid(session, phone: str, period: str, staff_name: str, staff_openid: str | None,
              today: date, now: datetime, fee_type: str | None = None) -> Marked:
    """Mark the cadre's unpaid items of a period paid today; FeeRefusal when there are none."""
    cadre = session.scalar(select(Cadre).where(Cadre.phone == phone))
    if cadre is None:
        raise FeeRefusal("unknown_phone", phone=phone)
    query = select(FeeItem).where(FeeItem.cadre_id == cadre.id, FeeItem.period == period)
    if fee_type:
        query = query.where(FeeItem.fee_type == fee_type)
    items = session.scalars(_order(query).with_for_update()).all()
    who = {"name": cadre.name, "phone": cadre.phone, **period_view(period), "type": fee_type}
    if not items:
        raise FeeRefusal("no_items", **who)
    unpaid = [i for i in items if not i.paid]
    if not unpaid:
        raise FeeRefusal("all_paid", items=[item_view(i) for i in items], **who)
    for item in unpaid:
        item.paid, item.paid_on = True, today
        item.paid_source, item.paid_by = PAID_BY_CHAT, staff_name
        session.add(FeeEvent(item_id=item.id, kind="paid", actor=staff_name,
                             actor_openid=staff_openid, at=now,
                             note=f"marked paid in chat for {today.isoformat()}"))
    session.flush()
    logger.info("fees: %s marked %d item(s) of %s paid for %s %s", mask_name(staff_name),
                len(unpaid), period, mask_name(cadre.name), mask_phone(cadre.phone))
    return Marked(cadre, period, unpaid)


# ---- staff: statistics ---------------------------------------------------------------------
@dataclass
class BranchStat:
    """Collection in one party branch for one period."""

    branch: str
    items: int = 0
    paid: int = 0
    due_fen: int = 0
    paid_fen: int = 0

    @property
    def rate(self) -> float:
        """Paid items / items, 0..1."""
        return self.paid / self.items if self.items else 0.0

    def view(self) -> dict:
        """What the statistics template shows."""
        return {"branch": self.branch, "count": self.items, "paid": self.paid,
                "percent": round(self.rate * 100), "due": yuan(self.due_fen),
                "collected": yuan(self.paid_fen), "owed": yuan(self.due_fen - self.paid_fen)}


def branch_stats(session, period: str, fee_types=()) -> tuple[list[BranchStat], BranchStat]:
    """Per-branch collection for a period (lowest rate first, no-branch last) and the total."""
    query = (select(Cadre.branch, FeeItem.paid, FeeItem.amount_fen)
             .join(FeeItem, FeeItem.cadre_id == Cadre.id).where(FeeItem.period == period))
    if fee_types:
        query = query.where(FeeItem.fee_type.in_(list(fee_types)))
    stats: dict[str, BranchStat] = {}
    total = BranchStat("total")
    for branch, paid, amount in session.execute(query):
        key = (branch or "").strip() or NO_BRANCH
        for stat in (stats.setdefault(key, BranchStat(key)), total):
            stat.items += 1
            stat.due_fen += amount
            if paid:
                stat.paid += 1
                stat.paid_fen += amount
    # Branches that need chasing first; then by name, so the list reads the same each time.
    ordered = sorted(stats.values(), key=lambda s: (s.branch == NO_BRANCH, s.rate, s.branch))
    return ordered, total


# ---- reminders -----------------------------------------------------------------------------
def due_step(step_days, today: date) -> int | None:
    """The latest configured step day on or before today in today's month, or None.

    A step day past the end of a short month counts as the month's last day.
    """
    last = monthrange(today.year, today.month)[1]
    passed = [d for d in step_days if min(d, last) <= today.day]
    return max(passed) if passed else None
