"""config/festivals.yaml and the festival dates of a year (lunar dates from lunar_python)."""
from __future__ import annotations

import calendar as gregorian
import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar, LunarMonth, Solar

from bot.config import ConfigFile
from bot.settings import ROOT

logger = logging.getLogger(__name__)
DEFAULT_PATH = ROOT / "config" / "festivals.yaml"
SETTINGS_KEY = "festivals"  # settings.extra["festivals"] may point at another file (tests)
LAST = "last"
CALENDARS = ("lunar", "solar")
AUDIENCES = ("all", "military")
MIN_YEAR, MAX_YEAR = 1901, 2099  # lunar_python's tables cover 1900–2100
TEXT_FIELDS = ("name", "date", "visit_from", "visit_to")
KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


class CalendarError(ValueError):
    """config/festivals.yaml is malformed; the message says where."""


@dataclass(frozen=True)
class Festival:
    """One festival of the calendar, as the operator configured it."""

    key: str
    name: str
    calendar: str
    month: int
    day: int | str
    days_before: int
    visit: bool
    audience: str
    notice: str
    greeting: str
    aliases: tuple[str, ...] = ()

    @property
    def military_only(self) -> bool:
        """Only retired military cadres hear of this festival (建军节)."""
        return self.audience == "military"

    def dates_in(self, year: int) -> list[date]:
        """The Gregorian dates of this festival that fall in `year` (usually exactly one)."""
        if self.calendar == "solar":
            return [date(year, self.month, self.day)]
        # A lunar year starts in Jan/Feb, so lunar year Y-1's late months land in year Y.
        found = (lunar_to_solar(y, self.month, self.day) for y in (year - 1, year))
        return [d for d in found if d.year == year]

    def next_date(self, day: date) -> date:
        """The festival's first date on or after `day`."""
        for year in (day.year, day.year + 1, day.year + 2):
            ahead = [d for d in self.dates_in(year) if d >= day]
            if ahead:
                return min(ahead)
        raise CalendarError(f"{self.key}: no date within two years of {day}")  # not reachable

    def notice_date(self, day: date) -> date:
        """When the visit notice for the occurrence on `day` goes out."""
        return day - timedelta(days=self.days_before)

    def visit_period(self, day: date) -> tuple[date, date]:
        """From the day after the notice to the eve of the festival (or the day itself)."""
        if self.days_before <= 1:
            return day, day
        return self.notice_date(day) + timedelta(days=1), day - timedelta(days=1)

    def matches(self, words: str) -> bool:
        """Whether staff typing `words` mean this festival (name, alias, key, part of the name)."""
        words = words.strip()
        if not words:
            return False
        if words in (self.name, self.key, *self.aliases):
            return True
        return len(words) >= 2 and words in self.name


@dataclass(frozen=True)
class Birthdays:
    """Birthday greeting text and which birthdays are milestones staff visit for."""

    greeting: str
    milestone_from: int
    milestone_every: int
    staff_days_before: int

    def is_milestone(self, age: int) -> bool:
        """80, 90, 100, … with the default settings."""
        return age >= self.milestone_from and (age - self.milestone_from) % \
            self.milestone_every == 0


@dataclass(frozen=True)
class FestivalCalendar:
    """The whole configuration file."""

    festivals: tuple[Festival, ...]
    birthdays: Birthdays
    signature: str

    def get(self, key: str) -> Festival | None:
        """The festival with this key, or None (removed from the file since)."""
        return next((f for f in self.festivals if f.key == key), None)

    def find(self, words: str) -> Festival | None:
        """The festival staff mean by `words` (exact names first, then part of a name)."""
        words = words.strip()
        exact = [f for f in self.festivals if words in (f.name, f.key, *f.aliases)]
        if exact:
            return exact[0]
        return next((f for f in self.festivals if f.matches(words)), None)

    def year(self, year: int) -> list[tuple[date, Festival]]:
        """Every festival date in a Gregorian year, in date order."""
        found = [(d, f) for f in self.festivals for d in f.dates_in(year)]
        return sorted(found, key=lambda pair: (pair[0], self.festivals.index(pair[1])))

    def on(self, day: date) -> list[Festival]:
        """The festivals that fall on `day`."""
        return [f for f in self.festivals if day in f.dates_in(day.year)]


# ---- lunar dates (the library does the arithmetic) -------------------------------------------
@lru_cache(maxsize=4096)
def lunar_to_solar(lunar_year: int, month: int, day: int | str) -> date:
    """The Gregorian date of a lunar date (ordinary month; `last` = the month's last day)."""
    if day == LAST:
        day = LunarMonth.fromYm(lunar_year, month).getDayCount()
    solar = Lunar.fromYmd(lunar_year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def lunar_label(day: date) -> tuple[str, str, bool]:
    """(month, day, leap) of a Gregorian date in the library's words: ('腊', '廿九', False)."""
    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    return lunar.getMonthInChinese().lstrip("闰"), lunar.getDayInChinese(), lunar.getMonth() < 0


def birthday_in(year: int, born: date) -> date:
    """The date a birthday is kept in `year`: 29 February falls on the 28th in common years."""
    if (born.month, born.day) == (2, 29) and not gregorian.isleap(year):
        return date(year, 2, 28)
    return date(year, born.month, born.day)


# ---- parsing ---------------------------------------------------------------------------------
def _int(item: dict, field: str, where: str, lo: int, hi: int, default=None) -> int:
    value = item.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CalendarError(f"{where}: {field} must be a whole number {lo}–{hi}, got {value!r}")
    return value


def _text(item: dict, field: str, where: str, required: bool) -> str:
    value = item.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise CalendarError(f"{where}: {field} must be a non-empty text")
    try:  # the placeholders are filled in with str.format: unknown ones fail here, not at 09:00
        value.format(**{name: "x" for name in TEXT_FIELDS + ("age",)})
    except (KeyError, IndexError, ValueError) as exc:
        raise CalendarError(f"{where}: {field} has a bad placeholder ({exc}); "
                            f"use {{name}} {{date}} {{visit_from}} {{visit_to}}") from exc
    return value.strip()


def _day(item: dict, where: str, kind: str, month: int) -> int | str:
    day = item.get("day")
    if kind == "lunar":
        if day == LAST:
            return LAST
        if day == 30:
            raise CalendarError(f"{where}: lunar day 30 does not exist every year; use `last`")
        return _int(item, "day", where, 1, 29)
    if day == LAST:
        raise CalendarError(f"{where}: day `last` is only for lunar festivals")
    day = _int(item, "day", where, 1, 31)
    if day > gregorian.monthrange(2023, month)[1]:  # 2023: a common year (no 29 February)
        raise CalendarError(f"{where}: {month}/{day} is not a date every year")
    return day


def parse_festival(item, index: int, days_before: int) -> Festival:
    """One entry of `festivals:`."""
    where = f"festivals[{index}]"
    if not isinstance(item, dict):
        raise CalendarError(f"{where}: expected a mapping, got {item!r}")
    key = str(item.get("key") or "")
    if not KEY_RE.fullmatch(key):
        raise CalendarError(f"{where}: key must be a-z, 0-9 or _ (starting with a letter), "
                            f"got {key!r}")
    where = f"festival {key}"
    kind = item.get("calendar")
    if kind not in CALENDARS:
        raise CalendarError(f"{where}: calendar must be lunar or solar, got {kind!r}")
    audience = item.get("audience", "all")
    if audience not in AUDIENCES:
        raise CalendarError(f"{where}: audience must be all or military, got {audience!r}")
    visit = item.get("visit", True)
    if not isinstance(visit, bool):
        raise CalendarError(f"{where}: visit must be true or false, got {visit!r}")
    month = _int(item, "month", where, 1, 12)
    aliases = item.get("aliases") or []
    if not isinstance(aliases, list):
        raise CalendarError(f"{where}: aliases must be a list")
    return Festival(
        key=key, name=_text(item, "name", where, True), calendar=kind, month=month,
        day=_day(item, where, kind, month),
        days_before=_int(item, "days_before", where, 0, 60, days_before), visit=visit,
        audience=audience, notice=_text(item, "notice", where, visit),
        greeting=_text(item, "greeting", where, True),
        aliases=tuple(str(a).strip() for a in aliases if str(a).strip()))


def parse_birthdays(raw) -> Birthdays:
    """The `birthdays:` section."""
    raw = raw if isinstance(raw, dict) else {}
    where = "birthdays"
    if "greeting" not in raw:
        raise CalendarError(f"{where}: greeting is missing")
    return Birthdays(greeting=_text(raw, "greeting", where, True),
                     milestone_from=_int(raw, "milestone_from", where, 1, 150, 80),
                     milestone_every=_int(raw, "milestone_every", where, 1, 100, 10),
                     staff_days_before=_int(raw, "staff_days_before", where, 0, 60, 7))


def parse_calendar(raw) -> FestivalCalendar:
    """Build and check the calendar from the YAML document."""
    if not isinstance(raw, dict):
        raise CalendarError("the file must be a mapping with a `festivals:` list")
    days_before = _int(raw, "days_before", "top level", 0, 60, 7)
    items = raw.get("festivals")
    if not isinstance(items, list) or not items:
        raise CalendarError("festivals: must be a non-empty list")
    festivals = tuple(parse_festival(item, i, days_before) for i, item in enumerate(items))
    for field in ("key", "name"):
        values = [getattr(f, field) for f in festivals]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise CalendarError(f"festivals: {field} used twice: {', '.join(twice)}")
    signature = raw.get("signature", "")
    if not isinstance(signature, str):
        raise CalendarError("signature must be a text")
    return FestivalCalendar(festivals, parse_birthdays(raw.get("birthdays")), signature.strip())


CALENDAR_FILE = ConfigFile(SETTINGS_KEY, DEFAULT_PATH, lambda raw, zone: parse_calendar(raw))
load_calendar = CALENDAR_FILE.load
