"""Roster import from .csv (UTF-8, UTF-8 with BOM, GBK) or .xlsx: validate rows, upsert by phone."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.tables import (ImportResult, RowError, TableFileError, cell, cell_date, read_records,
                        yes_no)
from models.people import Cadre

COLUMNS = {"姓名": "name", "手机号": "phone", "单位": "unit", "党支部": "branch",
           "出生日期": "birth_date", "是否军休": "is_military", "住址": "address",
           "社区": "community", "已故": "deceased"}
REQUIRED = ("姓名", "手机号")
LIMITS = {"name": 64, "unit": 128, "branch": 128, "address": 256, "community": 128}
YES = {"是", "y", "yes", "true", "1", "军休", "√"}
DECEASED = {"已故", "去世", "逝世"}  # what an operator may write in the 已故 column
NO = {"否", "n", "no", "false", "0", "", "×"}
EARLIEST_BIRTH = date(1900, 1, 1)
RosterFileError = TableFileError  # the roster file itself cannot be read


# ---- reading -------------------------------------------------------------------------------
def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(row number in the file, {header: value}) for each non-empty roster row."""
    return read_records(path, COLUMNS, REQUIRED)


# ---- validating ----------------------------------------------------------------------------
def parse_row(record: dict) -> dict:
    """Cadre column values from one record; RowError with the reason when unacceptable."""
    name = cell(record.get("姓名"))
    if not name:
        raise RowError("missing_name")
    values = {"name": name, "phone": parse_phone(record.get("手机号"))}
    if "出生日期" in record:
        values["birth_date"] = _birth_date(record["出生日期"])
    if "是否军休" in record:
        values["is_military"] = yes_no(record["是否军休"], YES, NO, "bad_military")
    if cell(record.get("已故")):  # blank leaves what staff recorded alone
        values["deceased"] = yes_no(record["已故"], YES | DECEASED, NO, "bad_deceased")
    for header in ("单位", "党支部", "住址", "社区"):
        if header in record:  # a column missing from the file leaves stored values alone
            values[COLUMNS[header]] = cell(record[header]) or None
    for key, limit in LIMITS.items():
        if values.get(key) and len(values[key]) > limit:
            raise RowError("too_long", column=key, limit=limit)
    return values


def parse_phone(value) -> str:
    """An 11-digit mobile number from a cell (Excel may hand it over as a float)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    phone = re.sub(r"[\s\-]", "", cell(value))
    if not re.fullmatch(r"[0-9]{11}", phone):
        raise RowError("bad_phone" if phone else "missing_phone")
    return phone


def _birth_date(value) -> date | None:
    value = cell_date(value, "unreadable_birth", "impossible_birth")
    if value is not None and not EARLIEST_BIRTH <= value <= date.today():
        raise RowError("implausible_birth", value=value.isoformat())
    return value


# ---- importing -----------------------------------------------------------------------------
def import_roster(session: Session, path: Path) -> ImportResult:
    """Upsert every good row by phone; collect bad rows with their numbers and reasons."""
    result = ImportResult()
    seen: dict[str, int] = {}
    for number, record in read_rows(path):
        try:
            values = parse_row(record)
        except RowError as exc:
            result.rejected.append((number, exc))
            continue
        if values["phone"] in seen:
            result.rejected.append((number, RowError("duplicate_phone",
                                                     row=seen[values["phone"]])))
            continue
        seen[values["phone"]] = number
        _upsert(session, values, result)
    session.flush()
    return result


def _upsert(session: Session, values: dict, result: ImportResult) -> None:
    deceased = values.pop("deceased", None)
    cadre = session.scalar(select(Cadre).where(Cadre.phone == values["phone"]))
    if cadre is None:
        cadre = Cadre(**values, active=True)
        session.add(cadre)
        result.added += 1
    else:
        for key, value in values.items():
            setattr(cadre, key, value)
        cadre.active = True
        result.updated += 1
    if deceased is not None:
        mark_deceased(cadre, deceased, date.today())


def mark_deceased(cadre: Cadre, deceased: bool, on: date) -> bool:
    """Mark (or, corrected, unmark) a cadre as deceased; whether anything changed."""
    if deceased == (cadre.deceased_on is not None):
        return False
    cadre.deceased_on = on if deceased else None
    return True
