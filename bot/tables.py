"""Reading the spreadsheets staff keep (.csv in UTF-8 or GBK, .xlsx) as numbered records."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

DATE_RE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


class TableFileError(Exception):
    """The file itself cannot be read (missing, wrong type, undecodable, no usable header)."""


class RowError(ValueError):
    """One row is not acceptable; `code` and `values` pick the reason in a feature's template."""

    def __init__(self, code: str, **values):
        super().__init__(code)
        self.code, self.values = code, values


@dataclass
class ImportResult:
    """What an import did: counts, rejected rows (row number, why), notes on rows kept
    differently, and cadres promoted from a wait-list by new seats."""

    added: int = 0
    updated: int = 0
    rejected: list[tuple[int, Any]] = field(default_factory=list)
    notes: list[tuple[int, Any]] = field(default_factory=list)
    promoted: int = 0


def cell(value) -> str:
    """A cell as trimmed text (full-width spaces too); None is ''."""
    return "" if value is None else str(value).replace("\u3000", " ").strip()


def cell_date(value, unreadable: str, impossible: str) -> date | None:
    """A date cell (xlsx date, or text like 2026-11-05, 2026年11月5日, 20261105); None if empty.

    RowError(unreadable) for text that is no date, RowError(impossible) for e.g. 2月30日.
    """
    if value is None or cell(value) == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = cell(value)
    m = DATE_RE.fullmatch(text) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not m:
        raise RowError(unreadable, value=text)
    try:
        return date(*(int(g) for g in m.groups()))
    except ValueError:
        raise RowError(impossible, value=text) from None


def yes_no(value, yes, no, code: str) -> bool:
    """A yes/no cell by the column's own words; RowError(code) for anything else."""
    if isinstance(value, bool):
        return value
    text = cell(value).lower()
    if text in yes:
        return True
    if text in no:
        return False
    raise RowError(code, value=text)


def read_records(path, columns, required) -> list[tuple[int, dict]]:
    """(row number in the file, {header: value}) for each non-empty data row.

    The header row is the first non-empty one; headers are matched after trimming, only
    `columns` are kept (extra columns are ignored) and every `required` one must be there.
    """
    path = Path(path)
    if not path.is_file():
        raise TableFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _csv_table(path)
    elif suffix == ".xlsx":
        table = _xlsx_table(path)
    else:
        raise TableFileError(f"{path}: only .csv and .xlsx are supported")
    return _records(path, table, columns, required)


def _csv_table(path: Path) -> list[list]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel on Chinese Windows writes GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TableFileError(f"{path}: not UTF-8 or GBK text")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise TableFileError(f"{path}: not a CSV file ({exc})") from exc


def _xlsx_table(path: Path) -> list[list]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        raise TableFileError(f"{path}: not a readable .xlsx file ({exc})") from exc
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def _records(path: Path, table: list[list], columns, required) -> list[tuple[int, dict]]:
    start = next((i for i, row in enumerate(table) if any(cell(v) for v in row)), None)
    if start is None:
        raise TableFileError(f"{path}: the file is empty")
    headers = [cell(v).lstrip("\ufeff").strip() for v in table[start]]
    missing = [h for h in required if h not in headers]
    if missing:
        raise TableFileError(f"{path}: missing column(s) {', '.join(missing)} "
                             f"(found: {', '.join(h for h in headers if h)})")
    index = {h: headers.index(h) for h in columns if h in headers}
    out = []
    for number, row in enumerate(table[start + 1:], start=start + 2):
        if any(cell(v) for v in row):
            out.append((number, {h: (row[i] if i < len(row) else None)
                                 for h, i in index.items()}))
    return out
