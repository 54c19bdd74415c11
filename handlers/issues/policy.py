"""config/issue_categories.yaml: categories, routing, SLA minutes and working hours."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


from bot.config import ConfigFile
from bot.settings import ROOT

logger = logging.getLogger(__name__)
DEFAULT_PATH = ROOT / "config" / "issue_categories.yaml"
SETTINGS_KEY = "issue_categories"  # settings.extra[...] may point at another file (tests)
MAX_DAYS_AHEAD = 400  # a deadline further away than this is treated as never


class PolicyError(ValueError):
    """The issue configuration file is malformed; the message says where."""


@dataclass(frozen=True)
class Category:
    """One issue category and the staff (by name) who handle it."""

    key: str
    name: str
    staff: tuple[str, ...]
    words: tuple[str, ...] = ()  # everyday words that name it (暖气 → 供暖水电)


@dataclass(frozen=True)
class Sla:
    """Minutes before an unclaimed ticket is re-pinged / escalated, per urgency."""

    renotify: int
    escalate: int


@dataclass(frozen=True)
class Policy:
    """The parsed configuration plus working-hours arithmetic."""

    categories: tuple[Category, ...]
    normal: Sla
    urgent: Sla
    reply_within_working_days: float
    days: frozenset[int]
    hours: tuple[tuple[time, time], ...]
    holidays: frozenset[date]
    extra_workdays: frozenset[date]
    digest_on_working_days_only: bool
    zone: ZoneInfo
    # After a staff member writes to a reporter, the reporter's next words go to them.
    reply_thread: timedelta = timedelta(hours=24)

    # ---- categories ----------------------------------------------------------------------
    def category(self, key: str) -> Category | None:
        """The category with this key, or None."""
        return next((c for c in self.categories if c.key == key), None)

    def category_name(self, key: str) -> str:
        """The category's display name (the key itself if it was removed from the file)."""
        found = self.category(key)
        return found.name if found else key

    def choose(self, answer: str, number: int | None) -> Category | None:
        """The category a cadre chose by number or by (part of) its name."""
        if number is not None:
            return self.categories[number - 1] if 1 <= number <= len(self.categories) else None
        return next((c for c in self.categories if answer and (answer == c.name or
                     (len(answer) >= 2 and answer in c.name))), None)

    def named_in(self, words: str) -> Category | None:
        """The one category whose name or everyday words appear in free words, else None."""
        hits = {c.key: sum(1 for w in (c.name, *c.words) if w and w in (words or ""))
                for c in self.categories}
        named = {k: n for k, n in hits.items() if n and k != "other"}
        if named and hits.get("other"):  # `说不好算哪个，反正是家里没电了`: the words decide
            hits["other"] = 0
        ranked = sorted(hits.items(), key=lambda kv: -kv[1])
        if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
            return None
        return self.category(ranked[0][0])

    def sla(self, urgent: bool) -> Sla:
        """The unclaimed-ticket SLA for this urgency."""
        return self.urgent if urgent else self.normal

    # ---- working hours -------------------------------------------------------------------
    def is_workday(self, day: date) -> bool:
        """Whether staff work on this date (weekday rule, holidays, 调休 days)."""
        if day in self.extra_workdays:
            return True
        return day.isoweekday() in self.days and day not in self.holidays

    def windows(self, day: date):
        """The working intervals of one date as aware datetimes."""
        if not self.is_workday(day):
            return []
        return [(datetime.combine(day, a, self.zone), datetime.combine(day, b, self.zone))
                for a, b in self.hours]

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime | None:
        """The instant `minutes` of working time after `start`; None if absurdly far."""
        left = timedelta(minutes=minutes)
        start = start.astimezone(self.zone)
        day = start.date()
        for _ in range(MAX_DAYS_AHEAD):
            for lo, hi in self.windows(day):
                lo = max(lo, start)
                if hi <= lo:
                    continue
                if hi - lo >= left:
                    return lo + left
                left -= hi - lo
            day += timedelta(days=1)
        return None

    @property
    def working_day_minutes(self) -> int:
        """Length of one working day in minutes."""
        return sum((datetime.combine(date.min, b) - datetime.combine(date.min, a)).seconds
                   for a, b in self.hours) // 60


def _hours(spec) -> tuple[tuple[time, time], ...]:
    """["08:30-12:00", …] -> ((time, time), …)."""
    result = []
    for item in spec or []:
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(item))
        if not m:
            raise PolicyError(f"working_hours.hours: {item!r} is not like 08:30-17:30")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        end = time(23, 59, 59, 999999) if (h2, m2) == (24, 0) else time(h2, m2)
        if end <= time(h1, m1):
            raise PolicyError(f"working_hours.hours: {item!r} ends before it starts")
        result.append((time(h1, m1), end))
    if not result:
        raise PolicyError("working_hours.hours is empty")
    return tuple(result)


def _dates(spec, field: str) -> frozenset[date]:
    try:
        return frozenset(d if isinstance(d, date) else date.fromisoformat(str(d))
                         for d in spec or [])
    except ValueError as exc:
        raise PolicyError(f"working_hours.{field}: {exc}") from exc


def _categories(spec) -> tuple[Category, ...]:
    cats = []
    for item in spec or []:
        if not isinstance(item, dict) or not item.get("key") or not item.get("name"):
            raise PolicyError(f"categories: every entry needs key and name, got {item!r}")
        cats.append(Category(str(item["key"]), str(item["name"]),
                             tuple(str(n) for n in item.get("staff") or []),
                             tuple(str(w) for w in item.get("words") or [])))
    if not cats:
        raise PolicyError("categories is empty")
    if len({c.key for c in cats}) != len(cats):
        raise PolicyError("categories: a key is used twice")
    return tuple(cats)


def _sla(spec, urgent: bool) -> Sla:
    default = (10, 30) if urgent else (30, 120)
    part = (spec or {}).get("urgent" if urgent else "normal") or {}
    return Sla(int(part.get("renotify_after_minutes", default[0])),
               int(part.get("escalate_after_minutes", default[1])))


def parse_policy(raw: dict, zone: ZoneInfo) -> Policy:
    """Build a Policy from the YAML document."""
    sla = raw.get("sla") or {}
    hours = raw.get("working_hours") or {}
    return Policy(
        categories=_categories(raw.get("categories")),
        normal=_sla(sla, False), urgent=_sla(sla, True),
        reply_within_working_days=float(sla.get("reply_within_working_days", 1)),
        days=frozenset(int(d) for d in hours.get("days", [1, 2, 3, 4, 5])),
        hours=_hours(hours.get("hours", ["08:30-17:30"])),
        holidays=_dates(hours.get("holidays"), "holidays"),
        extra_workdays=_dates(hours.get("extra_workdays"), "extra_workdays"),
        digest_on_working_days_only=bool(raw.get("digest_on_working_days_only", True)),
        zone=zone, reply_thread=timedelta(hours=float(raw.get("reply_thread_hours", 24))))


POLICY_FILE = ConfigFile(SETTINGS_KEY, DEFAULT_PATH,
                         lambda raw, zone: parse_policy(raw or {}, zone))
load_policy = POLICY_FILE.load
