"""One loader for the features' YAML files (config/*.yaml).

Each file is a `ConfigFile`: where it lives (a settings.extra key may point elsewhere, for tests),
and the feature's own `parse(raw, zone)`. It is read again when the file changes, parsed once per
version, and checked at start with one clear message naming the file — so a broken file stops
the service at start, not at 09:00 on a festival.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import yaml

from bot.settings import SettingsError

logger = logging.getLogger(__name__)
# What a broken file may raise while read and parsed (features' errors subclass ValueError).
BROKEN = (OSError, yaml.YAMLError, ValueError, TypeError, KeyError)


@dataclass(frozen=True)
class ConfigFile:
    """A feature's YAML file: its default path, the settings.extra key that may move it, and
    `parse(raw, zone) -> config` raising a ValueError that says where it is wrong."""

    setting: str
    default: Path
    parse: Callable[[Any, ZoneInfo], Any]

    def path(self, settings=None) -> Path:
        """The file these settings use."""
        extra = getattr(settings, "extra", None) or {}
        return Path(extra.get(self.setting) or self.default)

    def load(self, settings=None):
        """The parsed file (read again when it changes)."""
        path = self.path(settings)
        return _parsed(self, str(path), path.stat().st_mtime,
                       getattr(settings, "tz", None) or "Asia/Shanghai")

    def check(self, settings) -> None:
        """Refuse to start with a missing or broken file."""
        try:
            self.load(settings)
        except BROKEN as exc:
            raise SettingsError(f"{self.path(settings)} is not usable: {exc}") from exc


@lru_cache(maxsize=32)
def _parsed(config: ConfigFile, path: str, mtime: float, tz: str):
    """One version of one file, parsed."""
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    logger.info("config loaded from %s", path)
    return config.parse(raw, ZoneInfo(tz))
