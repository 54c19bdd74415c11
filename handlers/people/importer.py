"""Roster import from .csv (UTF-8, UTF-8 with BOM, GBK) or .xlsx: validate rows, upsert by phone."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.people import Cadre

COLUMNS = {"姓名": "name", "手机号": "phone", "单位": "unit", "党支部": "branch",
           "出生日期": "birth_date", "是否军休": "is_military", "住址": "address",
           "社区": "community"}
REQUIRED = ("姓名", "手机号")
LIMITS = {"name": 64, "unit": 128, "branch": 128, "address": 256, "community": 128}
YES = {"是", "y", "yes", "true", "1", "军休", "√"}
NO = {"否", "n", "no", "false", "0", "", "×"}
DATE_RE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
EARLIEST_BIRTH = date(1900, 1, 1)


class RosterFileError(Exception):
    """The file itself cannot be read (missing, wrong type, undecodable, no usable header)."""


class RowError(ValueError):
    """One row is not acceptable; `code` and `values` pick the reason in people/import_reason."""

    def __init__(self, code: str, **values):
        super().__init__(code)
        self.code, self.values = code, values


@dataclass
class ImportResult:
    """Counts and the rejected rows (row number, reason)."""

    added: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


# ---- reading -------------------------------------------------------------------------------
def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(row number in the file, {header: value}) for each non-empty data row."""
    path = Path(path)
    if not path.is_file():
        raise RosterFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _csv_table(path)
    elif suffix == ".xlsx":
        table = _xlsx_table(path)
    else:
        raise RosterFileError(f"{path}: only .csv and .xlsx are supported")
    return _records(path, table)


def _csv_table(path: Path) -> list[list]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterFileError(f"{path}: not UTF-8 or GBK text")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise RosterFileError(f"{path}: not a CSV file ({exc})") from exc


def _xlsx_table(path: Path) -> list[list]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        raise RosterFileError(f"{path}: not a readable .xlsx file ({exc})") from exc
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def _records(path: Path, table: list[list]) -> list[tuple[int, dict]]:
    """Find the header row (first non-empty), then map each later row by trimmed header."""
    start = next((i for i, row in enumerate(table) if any(_cell(v) for v in row)), None)
    if start is None:
        raise RosterFileError(f"{path}: the file is empty")
    headers = [_cell(v).lstrip("\ufeff") for v in table[start]]
    missing = [h for h in REQUIRED if h not in headers]
    if missing:
        raise RosterFileError(f"{path}: missing column(s) {', '.join(missing)} "
                              f"(found: {', '.join(h for h in headers if h)})")
    index = {h: headers.index(h) for h in COLUMNS if h in headers}
    out = []
    for number, row in enumerate(table[start + 1:], start=start + 2):
        if not any(_cell(v) for v in row):
            continue
        out.append((number, {h: (row[i] if i < len(row) else None) for h, i in index.items()}))
    return out


def _cell(value) -> str:
    return "" if value is None else str(value).replace("\u3000", " ").strip()


# ---- validating ----------------------------------------------------------------------------
def parse_row(record: dict) -> dict:
    """Cadre column values from one record; RowError with the reason when unacceptable."""
    name = _cell(record.get("姓名"))
    if not name:
        raise RowError("missing_name")
    values = {"name": name, "phone": _phone(record.get("手机号"))}
    if "出生日期" in record:
        values["birth_date"] = _birth_date(record["出生日期"])
    if "是否军休" in record:
        values["is_military"] = _yes_no(record["是否军休"])
    for header in ("单位", "党支部", "住址", "社区"):
        if header in record:  # a column missing from the file leaves stored values alone
            values[COLUMNS[header]] = _cell(record[header]) or None
    for key, limit in LIMITS.items():
        if values.get(key) and len(values[key]) > limit:
            raise RowError("too_long", column=key, limit=limit)
    return values


def _phone(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    phone = re.sub(r"[\s\-]", "", _cell(value))
    if not re.fullmatch(r"[0-9]{11}", phone):
        raise RowError("bad_phone" if phone else "missing_phone")
    return phone


def _birth_date(value) -> date | None:
    if value is None or _cell(value) == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        value = _date_from_text(_cell(value))
    if not EARLIEST_BIRTH <= value <= date.today():
        raise RowError("implausible_birth", value=value.isoformat())
    return value


def _date_from_text(text: str) -> date:
    m = DATE_RE.fullmatch(text) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not m:
        raise RowError("unreadable_birth", value=text)
    try:
        return date(*(int(g) for g in m.groups()))
    except ValueError as exc:
        raise RowError("impossible_birth", value=text) from exc


def _yes_no(value) -> bool:
    if isinstance(value, bool):
        return value
    text = _cell(value).lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise RowError("bad_military", value=text)


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
            result.rejected.append((number, RowError("duplicate_phone", row=seen[values["phone"]])))
            continue
        seen[values["phone"]] = number
        _upsert(session, values, result)
    session.flush()
    return result


def _upsert(session: Session, values: dict, result: ImportResult) -> None:
    cadre = session.scalar(select(Cadre).where(Cadre.phone == values["phone"]))
    if cadre is None:
        session.add(Cadre(**values, active=True))
        result.added += 1
        return
    for key, value in values.items():
        setattr(cadre, key, value)
    cadre.active = True
    result.updated += 1
