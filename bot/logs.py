"""Logging set-up: every record has its phone numbers and known names masked, whatever emits it."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from bot.privacy import mask_names_in, watch_models
from bot.text import mask_phones_in

_installed = False
_FORMATTER = logging.Formatter()


def default_level() -> int:
    """INFO for the server and workers; WARNING for one-off CLI commands (their output is
    what they print), unless YINLING_LOG_LEVEL says otherwise."""
    wanted = os.environ.get("YINLING_LOG_LEVEL", "").upper()
    if wanted in logging.getLevelNamesMapping():
        return logging.getLevelNamesMapping()[wanted]
    argv = sys.argv or [""]
    one_off = Path(argv[0]).name == "flask" and not {"run", "worker", "scheduler"} & set(argv)
    return logging.WARNING if one_off else logging.INFO


def _mask(text: str) -> str:
    """Phone numbers and every name the process has seen, masked."""
    return mask_names_in(mask_phones_in(text))


def configure_logging(level: int | None = None) -> None:
    """Install the masking record factory once and a default handler if there is none."""
    global _installed
    watch_models()  # names on rows the process loads or writes are masked in every record
    level = default_level() if level is None else level
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        if isinstance(record.args, tuple) and any(
                isinstance(a, str) and ("\n" in a or "\r" in a) for a in record.args):
            # A value from outside (an openid, a name) never starts a line of its own: no
            # forged log lines.
            record.args = tuple(a.replace("\r", "\\r").replace("\n", "\\n")
                                if isinstance(a, str) else a for a in record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        masked = _mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None:
            # Exception messages can carry user input; format them now, masked.
            record.exc_text = _mask(_FORMATTER.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
