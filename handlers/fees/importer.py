"""Fee ledger import from .csv (UTF-8, UTF-8 with BOM, GBK) or .xlsx: one item per
(cadre, fee type, period); re-import updates it. Reading the file is bot.tables'."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.tables import ImportResult, RowError, cell, cell_date, read_records, yes_no
from bot.tables import TableFileError as FeeFileError
from handlers.fees.service import parse_period
from handlers.people.importer import parse_phone
from models.fees import PAID_BY_CHAT, PAID_BY_IMPORT, FeeEvent, FeeItem
from models.people import Cadre

__all__ = ["FeeFileError", "ImportResult", "import_fees", "parse_row", "read_fee_rows"]

COLUMNS = ("手机号", "费用类型", "期间", "金额", "已缴", "缴费日期")
REQUIRED = COLUMNS[:5]
YES = {"是", "已缴", "已交", "y", "yes", "true", "1", "√"}
NO = {"否", "未缴", "未交", "n", "no", "false", "0", "×"}
MAX_TYPE = 32
MAX_FEN = 100_000_00  # 100,000 yuan: anything larger is a typo
EARLIEST_PAID = date(2000, 1, 1)
IMPORT_ACTOR = "import"


# ---- reading -------------------------------------------------------------------------------
def read_fee_rows(path: Path) -> list[tuple[int, dict]]:
    """(row number in the file, {column: value}) for each non-empty data row."""
    return read_records(path, COLUMNS, REQUIRED)


# ---- validating ----------------------------------------------------------------------------
def parse_row(record: dict, today: date) -> dict:
    """Ledger values from one record; RowError with the reason when unacceptable."""
    fee_type = re.sub(r"\s+", "", cell(record.get("费用类型")))
    if not fee_type:
        raise RowError("missing_type")
    if len(fee_type) > MAX_TYPE:
        raise RowError("type_too_long", limit=MAX_TYPE)
    paid = yes_no(record.get("已缴"), YES, NO, "bad_paid")
    paid_on = _paid_on(record.get("缴费日期"), today)
    if paid_on is not None and not paid:
        raise RowError("date_but_unpaid", value=paid_on.isoformat())
    return {"phone": parse_phone(record.get("手机号")), "fee_type": fee_type,
            "period": _period(record.get("期间")), "amount_fen": _amount(record.get("金额")),
            "paid": paid, "paid_on": paid_on}


def _period(value) -> str:
    text = cell(value)
    if not text:
        raise RowError("missing_period")
    period = parse_period(value if isinstance(value, (date, datetime)) else text)
    if period is None:
        raise RowError("bad_period", value=text)
    return period


def _amount(value) -> int:
    if isinstance(value, bool):
        raise RowError("bad_amount", value=str(value))
    text = cell(value).replace(",", "").replace("，", "").lstrip("¥￥").removesuffix("元")
    if not text:
        raise RowError("missing_amount")
    try:
        amount = Decimal(str(value) if isinstance(value, (int, float)) else text.strip())
    except InvalidOperation:
        raise RowError("bad_amount", value=cell(value)) from None
    if not amount.is_finite() or amount <= 0 or amount * 100 != int(amount * 100) \
            or amount * 100 > MAX_FEN:
        raise RowError("bad_amount", value=cell(value))
    return int(amount * 100)


def _paid_on(value, today: date) -> date | None:
    value = cell_date(value, "bad_date", "bad_date")
    if value is not None and not EARLIEST_PAID <= value <= today:
        raise RowError("implausible_date", value=value.isoformat())
    return value


# ---- importing -----------------------------------------------------------------------------
def import_fees(session: Session, path: Path, today: date, now: datetime) -> ImportResult:
    """Upsert every good row by (cadre, fee type, period); collect bad rows with reasons."""
    result = ImportResult()
    seen: dict[tuple, int] = {}
    cadres: dict[str, int | None] = {}
    for number, record in read_fee_rows(path):
        try:
            values = parse_row(record, today)
            cadre_id = _cadre_id(session, cadres, values.pop("phone"))
        except RowError as exc:
            result.rejected.append((number, exc))
            continue
        key = (cadre_id, values["fee_type"], values["period"])
        if key in seen:
            result.rejected.append((number, RowError("duplicate", row=seen[key])))
            continue
        seen[key] = number
        _upsert(session, cadre_id, values, number, result, now)
    session.flush()
    return result


def _cadre_id(session: Session, cache: dict, phone: str) -> int:
    if phone not in cache:
        cache[phone] = session.scalar(select(Cadre.id).where(Cadre.phone == phone))
    if cache[phone] is None:
        raise RowError("unknown_phone", phone=phone)
    return cache[phone]


def _upsert(session: Session, cadre_id: int, values: dict, number: int,
            result: ImportResult, now: datetime) -> None:
    item = session.scalar(select(FeeItem).where(
        FeeItem.cadre_id == cadre_id, FeeItem.fee_type == values["fee_type"],
        FeeItem.period == values["period"]))
    if item is None:
        item = FeeItem(cadre_id=cadre_id, paid_source=PAID_BY_IMPORT if values["paid"] else None,
                       **values)
        session.add(item)
        session.flush()
        _event(session, item, "added", now, _describe(item))
        result.added += 1
        return
    result.updated += 1
    changes = _apply(item, values, number, result)
    if changes:
        _event(session, item, "updated", now, "; ".join(changes))


def _apply(item: FeeItem, values: dict, number: int, result: ImportResult) -> list[str]:
    """Update an item from a row; a payment staff recorded in chat is not undone by a file."""
    changes = []
    if item.amount_fen != values["amount_fen"]:
        changes.append(f"amount {item.amount_fen} -> {values['amount_fen']}")
        item.amount_fen = values["amount_fen"]
    if values["paid"]:
        if not item.paid:
            item.paid_source, item.paid_by = PAID_BY_IMPORT, None
            changes.append("paid")
        if values["paid_on"] and values["paid_on"] != item.paid_on:
            changes.append(f"paid on {values['paid_on'].isoformat()}")
        item.paid, item.paid_on = True, values["paid_on"] or item.paid_on
    elif item.paid and item.paid_source == PAID_BY_CHAT:
        # The finance export may predate a payment staff took: keep it paid, and say so.
        result.notes.append((number, RowError(
            "kept_paid", by=item.paid_by or "", on=item.paid_on.isoformat()
            if item.paid_on else "")))
    elif item.paid:
        item.paid, item.paid_on, item.paid_source, item.paid_by = False, None, None, None
        changes.append("unpaid")
    return changes


def _describe(item: FeeItem) -> str:
    paid = f", paid {item.paid_on.isoformat() if item.paid_on else ''}" if item.paid else ""
    return f"amount {item.amount_fen}{paid}".rstrip()


def _event(session: Session, item: FeeItem, kind: str, now: datetime, note: str) -> None:
    session.add(FeeEvent(item_id=item.id, kind=kind, actor=IMPORT_ACTOR, at=now,
                         note=note[:256]))
