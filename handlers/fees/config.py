"""config/fees.yaml: reminder time and step days, statistics scope, how-to-pay text."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import time


from bot.config import ConfigFile
from bot.settings import ROOT

logger = logging.getLogger(__name__)
DEFAULT_PATH = ROOT / "config" / "fees.yaml"
SETTINGS_KEY = "fees_config"  # settings.extra[...] may point at another file (tests)
DEFAULT_TIME = time(9, 30)
DEFAULT_STEPS = (5, 15, 25)


class FeeConfigError(ValueError):
    """config/fees.yaml is malformed; the message says where."""


@dataclass(frozen=True)
class FeeConfig:
    """The parsed fee configuration."""

    reminder_time: time
    step_days: tuple[int, ...]
    stats_fee_types: tuple[str, ...]
    how_to_pay: str


def _time(value) -> time:
    if value is None:
        return DEFAULT_TIME
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 09:30 as 570 (minutes)
        value = f"{value // 60}:{value % 60:02d}"
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise FeeConfigError(f"reminder.time: {value!r} is not a time like 09:30")
    return time(int(m.group(1)), int(m.group(2)))


def _steps(value) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_STEPS
    if not isinstance(value, list) or not value:
        raise FeeConfigError(f"reminder.step_days: expected a list of days, got {value!r}")
    days = []
    for day in value:
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            raise FeeConfigError(f"reminder.step_days: {day!r} is not a day of the month 1-31")
        days.append(day)
    if len(set(days)) != len(days):
        raise FeeConfigError("reminder.step_days: a day is listed twice")
    return tuple(sorted(days))


def _types(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FeeConfigError(f"stats_fee_types: expected a list of fee type names, got {value!r}")
    return tuple(v.strip() for v in value)


def parse_config(raw) -> FeeConfig:
    """Build a FeeConfig from the YAML document; FeeConfigError says what is wrong."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FeeConfigError("the file must be a mapping (reminder, stats_fee_types, how_to_pay)")
    reminder = raw.get("reminder") or {}
    if not isinstance(reminder, dict):
        raise FeeConfigError("reminder: expected a mapping with time and step_days")
    how = raw.get("how_to_pay")
    if not isinstance(how, str) or not how.strip():
        raise FeeConfigError("how_to_pay: the text telling cadres how to pay is missing")
    return FeeConfig(reminder_time=_time(reminder.get("time")),
                     step_days=_steps(reminder.get("step_days")),
                     stats_fee_types=_types(raw.get("stats_fee_types")),
                     how_to_pay=how.strip())


FEES_FILE = ConfigFile(SETTINGS_KEY, DEFAULT_PATH, lambda raw, zone: parse_config(raw))
load_config = FEES_FILE.load
