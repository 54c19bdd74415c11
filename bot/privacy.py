"""Personal names this process has seen, so every log line can mask them wherever they appear."""
# Names are not pattern-shaped like phone numbers: each name on a model row that is loaded,
# refreshed or assigned is remembered here (bounded), and `mask_names_in` replaces any
# remembered name in a text with `mask_name(name)` in one pass over its CJK runs.
from __future__ import annotations

import re
import threading

from bot.text import mask_name

MAX_NAMES = 200_000  # past this, the oldest remembered names are forgotten
MAX_NAME_LENGTH = 64  # the widest person-name column
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_DOTS = "·•・‧"  # the separator in transliterated names (阿依古丽·买买提)
NAME_RUN = re.compile(f"[{_CJK}{_DOTS}]{{2,}}")
NAME_SHAPE = re.compile(f"[{_CJK}][{_CJK}{_DOTS}]*[{_CJK}]")

_names: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
_lengths: tuple[int, ...] = ()  # every length remembered, longest first
_lock = threading.Lock()
_watching = False


def remember_name(value) -> None:
    """Remember a person's name (two or more CJK characters); anything else is ignored."""
    if not isinstance(value, str):
        return
    name = value.strip()
    if name in _names or len(name) > MAX_NAME_LENGTH or not NAME_SHAPE.fullmatch(name):
        return
    with _lock:
        _names[name] = None
        _remember_length(len(name))
        while len(_names) > MAX_NAMES:
            del _names[next(iter(_names))]


def _remember_length(length: int) -> None:
    """Add a name length to the lengths looked up (replaced whole: readers take no lock)."""
    global _lengths
    if length not in _lengths:
        _lengths = tuple(sorted({*_lengths, length}, reverse=True))


def mask_names_in(text: str) -> str:
    """Mask every remembered name inside free text."""
    if not _names or not text or text.isascii():
        return text
    return NAME_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match) -> str:
    """One CJK run with its remembered names masked, leftmost-longest (linear in the run)."""
    run, lengths = match.group(), _lengths
    parts, start, i = [], 0, 0
    while i < len(run):
        size = _name_at(run, i, lengths)
        if size:
            parts += [run[start:i], mask_name(run[i:i + size])]
            i = start = i + size
        else:
            i += 1
    return "".join(parts) + run[start:] if parts else run


def _name_at(run: str, i: int, lengths: tuple[int, ...]) -> int:
    """The length of the longest remembered name starting at run[i], or 0."""
    for size in lengths:
        if i + size <= len(run) and run[i:i + size] in _names:
            return size
    return 0


def name_columns() -> list:
    """(model, attribute) of every column that holds a person's name."""
    from models.fees import FeeEvent, FeeItem
    from models.people import Cadre, Staff, StaffInvite

    return [(Cadre, "name"), (Staff, "name"), (StaffInvite, "name"),
            (FeeItem, "paid_by"), (FeeEvent, "actor")]


def watch_models() -> None:
    """Remember names as rows carrying them are loaded, refreshed or given one (once)."""
    global _watching
    if _watching:
        return
    for model, attribute in name_columns():
        _watch(model, attribute)
    _watching = True


def _watch(model, attribute: str) -> None:
    """ORM listeners remembering one name column's values."""
    from sqlalchemy import event

    def loaded(target, context):
        remember_name(target.__dict__.get(attribute))

    def refreshed(target, context, attrs):
        remember_name(target.__dict__.get(attribute))

    def assigned(target, value, oldvalue, initiator):
        remember_name(value)

    event.listen(model, "load", loaded)
    event.listen(model, "refresh", refreshed)
    event.listen(getattr(model, attribute), "set", assigned)  # constructor kwargs too
