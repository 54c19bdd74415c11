"""WeChat's field types for template messages and subscription notices, and value shaping.

Since May 2023 a template message shows no `first`/`remark`, no line breaks and at most 20
characters a field (WeChat cuts longer ones on the phone); subscription notices refuse a value
outside its type's rules with 47003. `shape(value, type, channel)` makes any text fit: allowed
characters only, no line break, cut on a character boundary to the type's limit (and to the
20 characters a template field shows).

The rules (WeChat's "参数值内容限制说明"):
  thing             20 characters: Chinese, letters, digits or symbols
  character_string  32 digits, letters or symbols (no Chinese)
  number            32 digits, a decimal point allowed
  letter            32 letters
  symbol            5 symbols
  time / date       24-hour time and/or a date (年月日, or with - / .), a span joined by ~
  amount            one currency sign + at most 10 digits, decimals allowed, may end in 元
  phone_number      17 digits or symbols
  car_number        8: letters or digits, the first and last may be Chinese
  name              10 Chinese characters, or 20 letters or symbols
  phrase            5 Chinese characters only
"""
from __future__ import annotations

import re

TEMPLATE_SHOWN = 20   # characters a template message shows of one field
ELLIPSIS = "…"

LIMITS = {"thing": 20, "character_string": 32, "number": 32, "letter": 32, "symbol": 5,
          "time": 32, "date": 32, "amount": 15, "phone_number": 17, "car_number": 8,
          "name": 20, "phrase": 5}
TYPES = tuple(LIMITS)
CHANNELS = ("template", "subscribe")
NAME_HAN_LIMIT = 10
AMOUNT_DIGITS = 10
# What a field shows when the fact is empty: WeChat refuses empty values.
PLACEHOLDER = {"thing": "无", "phrase": "无", "name": "无", "character_string": "-",
               "symbol": "-", "number": "0", "letter": "N", "phone_number": "-",
               "car_number": "-", "amount": "0元", "time": "-", "date": "-"}
TIME_CHARS = re.compile(r"[^0-9年月日:\-/.~ ]")


def is_han(ch: str) -> bool:
    """A Chinese character (CJK unified ideographs and extension A)."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def is_ascii_alnum(ch: str) -> bool:
    """A digit or a Latin letter."""
    return ch.isascii() and ch.isalnum()


def is_symbol(ch: str) -> bool:
    """A visible ASCII symbol (WeChat: common symbols other than Chinese, letters, digits)."""
    return ch.isascii() and ch.isprintable() and not ch.isalnum() and not ch.isspace()


def one_line(value) -> str:
    """Text without line breaks, control characters, emoji or repeated spaces."""
    text = "" if value is None else str(value)
    text = "".join(" " if not ch.isprintable() or ch.isspace() else ch for ch in text
                   if ord(ch) <= 0xFFFF and ch != "\ufe0f")
    return re.sub(r" {2,}", " ", text).strip()


def cut(text: str, limit: int, ellipsis: bool = True) -> str:
    """At most `limit` characters, cut on a character boundary (with … when cut)."""
    if len(text) <= limit:
        return text
    if not ellipsis:
        return text[:limit]
    return text[:limit - 1].rstrip() + ELLIPSIS


def limit_of(type_name: str, channel: str) -> int:
    """The type's limit, and never more than a template message shows."""
    limit = LIMITS[type_name]
    return min(limit, TEMPLATE_SHOWN) if channel == "template" else limit


def shape(value, type_name: str, channel: str = "template") -> str:
    """`value` as a field of this type may carry it on this channel (never empty)."""
    if type_name not in LIMITS:
        raise ValueError(f"unknown WeChat field type {type_name!r}")
    text = SHAPERS[type_name](one_line(value), limit_of(type_name, channel))
    return text or PLACEHOLDER[type_name]


def _thing(text: str, limit: int) -> str:
    return cut(text, limit)


def _keep(text: str, allowed, limit: int) -> str:
    return "".join(ch for ch in text if allowed(ch))[:limit]


def _character_string(text: str, limit: int) -> str:
    return _keep(text, lambda ch: is_ascii_alnum(ch) or is_symbol(ch), limit)


def _number(text: str, limit: int) -> str:
    digits = _keep(text, lambda ch: ch.isascii() and (ch.isdigit() or ch == "."), limit)
    whole, _, frac = digits.partition(".")
    frac = frac.replace(".", "")
    return f"{whole or '0'}.{frac}" if frac else whole


def _letter(text: str, limit: int) -> str:
    return _keep(text, lambda ch: ch.isascii() and ch.isalpha(), limit)


def _symbol(text: str, limit: int) -> str:
    return _keep(text, is_symbol, limit)


def _time(text: str, limit: int) -> str:
    """Time and date: their characters only; a cut never ends on a separator."""
    kept = re.sub(r"(?<![0-9])[年月日]", "", TIME_CHARS.sub("", text))
    kept = re.sub(r" {2,}", " ", kept).strip()
    return kept[:limit].rstrip(" :-/.~")


def _amount(text: str, limit: int) -> str:
    """One currency sign, the number (at most 10 digits), and 元 when the fact had it."""
    m = re.search(r"\d+(?:\.\d+)?", text.replace(",", ""))
    if not m:
        return ""
    whole, _, frac = m.group().partition(".")
    frac = frac[:2][:max(AMOUNT_DIGITS - len(whole), 0)]
    number = whole[:AMOUNT_DIGITS] + (f".{frac}" if frac else "")
    sign = next((ch for ch in text[:m.start()] if ch in "¥￥$"), "")
    unit = "元" if "元" in text[m.end():] or not sign else ""
    return f"{sign}{number}{unit}"[:limit]


def _phone_number(text: str, limit: int) -> str:
    return _keep(text, lambda ch: ch.isascii() and (ch.isdigit() or ch in "+-()"), limit)


def _car_number(text: str, limit: int) -> str:
    """Letters and digits; Chinese only as the first and the last character."""
    chars = [ch for ch in text if is_han(ch) or is_ascii_alnum(ch)]
    kept = [ch for i, ch in enumerate(chars)
            if is_ascii_alnum(ch) or i in (0, len(chars) - 1)]
    if len(kept) > limit and is_han(kept[-1]):
        kept = kept[:limit - 1] + kept[-1:]
    return "".join(kept[:limit]).upper()


def _name(text: str, limit: int) -> str:
    """A name: 10 characters when it has Chinese, else 20 letters or symbols."""
    if any(is_han(ch) for ch in text):
        return _keep(text, lambda ch: is_han(ch) or (ch.isascii() and ch.isalpha())
                     or ch == "·", min(limit, NAME_HAN_LIMIT))
    return _keep(text, lambda ch: (ch.isascii() and ch.isalpha()) or is_symbol(ch)
                 or ch == " ", limit).strip()


def _phrase(text: str, limit: int) -> str:
    return _keep(text, is_han, limit)


SHAPERS = {"thing": _thing, "character_string": _character_string, "number": _number,
           "letter": _letter, "symbol": _symbol, "time": _time, "date": _time,
           "amount": _amount, "phone_number": _phone_number, "car_number": _car_number,
           "name": _name, "phrase": _phrase}


def type_of_key(key: str) -> str | None:
    """The type a WeChat field key names (`thing1` -> thing, `character_string12` -> …)."""
    base = key.rstrip("0123456789")
    return base if base in LIMITS else None
