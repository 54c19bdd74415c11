"""Course import from .csv (UTF-8, BOM, GBK) or .xlsx, reusing the roster's file reading.

Columns: 课程, 上课时间 (one or more `YYYY-MM-DD HH:MM`, separated by `;` or `；`), 地点,
名额, 报名截止 (`YYYY-MM-DD`). Re-importing a course name updates that course.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from pathlib import Path

from bot.tables import ImportResult, RowError, TableFileError, cell, cell_date, read_records
from handlers.courses import service

COLUMNS = ("课程", "上课时间", "地点", "名额", "报名截止")
LIMITS = {"name": 128, "venue": 256}
MAX_CAPACITY = 10000
SESSION_RE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?\s*(\d{1,2})[:点时](\d{2})分?")
SEPARATORS = re.compile(r"[;\n、]+")


class CourseFileError(TableFileError):
    """The file itself cannot be read (missing, wrong type, undecodable, no usable header)."""


# ---- values (shared with `course create`) ------------------------------------------------
def parse_sessions(value, zone) -> list[datetime]:
    """`2026-03-05 09:00；2026-03-12 09:00` (or one Excel date-time) -> aware datetimes, sorted."""
    if isinstance(value, datetime):
        return [value.replace(tzinfo=zone) if value.tzinfo is None else value]
    text = unicodedata.normalize("NFKC", cell(value))
    parts = [p.strip() for p in SEPARATORS.split(text) if p.strip()]
    if not parts:
        raise RowError("missing_sessions")
    found = []
    for part in parts:
        m = SESSION_RE.fullmatch(part)
        if not m:
            raise RowError("bad_session", value=part)
        try:
            found.append(datetime(*(int(g) for g in m.groups()), tzinfo=zone))
        except ValueError:
            raise RowError("impossible_session", value=part) from None
    if len(set(found)) != len(found):
        raise RowError("duplicate_session")
    return sorted(found)


def parse_deadline(value) -> date:
    """`2026-03-01` (or an Excel date) -> date."""
    if not isinstance(value, date):
        value = unicodedata.normalize("NFKC", cell(value))
    deadline = cell_date(value, "bad_deadline", "bad_deadline")
    if deadline is None:
        raise RowError("missing_deadline")
    return deadline


def parse_capacity(value) -> int:
    """A whole number of seats, at least 1."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", cell(value)).removesuffix("人").strip()
    if not text:
        raise RowError("missing_capacity")
    if not text.isdigit() or not 1 <= int(text) <= MAX_CAPACITY:
        raise RowError("bad_capacity", value=text)
    return int(text)


def course_data(name, sessions, venue, capacity, deadline, zone) -> service.CourseData:
    """Validate one course's values (RowError with the reason when unacceptable)."""
    name, venue = cell(name), cell(venue)
    if not name:
        raise RowError("missing_name")
    if not venue:
        raise RowError("missing_venue")
    for key, text in (("name", name), ("venue", venue)):
        if len(text) > LIMITS[key]:
            raise RowError("too_long", column=key, limit=LIMITS[key])
    data = service.CourseData(name=name, sessions=parse_sessions(sessions, zone), venue=venue,
                              capacity=parse_capacity(capacity),
                              deadline=parse_deadline(deadline))
    if data.deadline > data.sessions[-1].date():
        raise RowError("deadline_after_sessions", deadline=data.deadline.isoformat())
    return data


# ---- the file ------------------------------------------------------------------------------
def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(row number in the file, {header: value}) for each non-empty data row."""
    try:
        return read_records(path, COLUMNS, COLUMNS)
    except TableFileError as exc:
        raise CourseFileError(str(exc)) from exc


def import_courses(session, path: Path, zone, now: datetime, push) -> ImportResult:
    """Create or update (by name) every good row; collect bad rows with numbers and reasons."""
    result = ImportResult()
    seen: dict[str, int] = {}
    for number, record in read_rows(path):
        try:
            data = course_data(record["课程"], record["上课时间"], record["地点"],
                               record["名额"], record["报名截止"], zone)
        except RowError as exc:
            result.rejected.append((number, exc))
            continue
        if data.name in seen:
            result.rejected.append((number, RowError("duplicate_name", row=seen[data.name])))
            continue
        seen[data.name] = number
        existing = service.course_named(session, data.name)
        if existing is None:
            service.create_course(session, data)
            result.added += 1
        else:
            result.promoted += len(service.update_course(session, existing, data, now, push))
            result.updated += 1
    session.flush()
    return result
