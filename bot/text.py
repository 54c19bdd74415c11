"""Forgiving input normalisation, number parsing, masking and reply cutting."""
from __future__ import annotations

import re
import unicodedata

TRAILING_PUNCT = "。！？.!?，,、；;~～…"
CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
             "六": 6, "七": 7, "八": 8, "九": 9, "幺": 1, "洞": 0,  # as phone numbers are read
             "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5, "陆": 6, "柒": 7, "捌": 8, "玖": 9}
WECHAT_TEXT_LIMIT = 2048  # bytes of UTF-8 in a passive text reply
# What may stand between a name and its phone number (`王建国同志，手机尾号是1001`).
NAME_TO_NUMBER = (r"(?:同志|本人|局长|处长|科长|主任|老师)?[\s,，:：]*(?:的)?"
                  r"(?:手机号码|手机号|电话号码|电话号|电话|手机尾号|电话尾号|尾号|后四位|手机)?"
                  r"(?:是)?[\s,，:：]*")


def normalise(text: str | None) -> str:
    """Full-width to half-width, whitespace collapsed, trailing punctuation dropped."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\s+", " ", text).strip()
    stripped = text.rstrip(TRAILING_PUNCT + " ")
    return stripped or text  # a lone `?` is itself a command


def parse_number(text: str | None) -> int | None:
    """`3`, `三`, `十二`, `第3个`, `3号` -> int; anything else -> None."""
    text = normalise(text)
    m = re.fullmatch(r"(?:选择?|选第|就|看|打开|报|要)?第?\s*([0-9]+|[零〇一二两三四五六七八九十百幺]+)\s*"
                     r"(个|号|项|条|位|门)?", text)
    if not m:
        return None
    token = m.group(1)
    return int(token) if token.isdigit() else chinese_number(token)


def digits_for_numerals(text: str) -> str:
    """Chinese numerals before 号, 月 or a score's 分, or in `第…个`, as digits (`十二号` ->
    `12号`, `十一月` -> `11月`, `打个五分` -> `打个5分`, `第十三个` -> `第13个`), so that a
    pattern's `\\d+` reads them;
    `十分` (very) stays."""
    text = _SPELLED.sub(lambda m: "".join(str(CN_DIGITS[c]) for c in m.group(0)), text)
    text = _NUMERAL_UNIT.sub(lambda m: f"{_number_token(m.group(1))}{m.group(2)}", text)
    text = _NUMERAL_ORDINAL.sub(lambda m: f"第{_number_token(m.group(1))}个", text)
    return _NUMERAL_SCORE.sub(lambda m: f"{CN_DIGITS[m.group(1)]}分", text)


# A phone number read out digit by digit (`一三八零零零零一零零二`).
_SPELLED = re.compile(r"[零〇一二三四五六七八九幺洞]{7,}")
_NUMERAL_UNIT = re.compile(r"([零〇一二两三四五六七八九十]{1,3})(号|月)")
_NUMERAL_ORDINAL = re.compile(r"第([零〇一二两三四五六七八九十]{1,3})个")   # `第十三个`
_NUMERAL_SCORE = re.compile(r"(?<![十百几])([一二三四五])[分份]")  # 份: 分 heard wrong


def find_ordinal(text: str | None) -> int | None:
    """A list position said inside a sentence (`我要第三个`, `给我妈报那个第一个`, `选2号`);
    None when there is none or two different ones."""
    found = {_number_token(m.group(1)) for m in _ORDINAL.finditer(normalise(text))}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


_ORDINAL = re.compile(r"(?:第|选)\s*([0-9]+|[一二两三四五六七八九十]+)\s*(?:个|号|项|条|门|种)?")


def _number_token(token: str) -> int | None:
    return int(token) if token.isdigit() else chinese_number(token)


def chinese_number(token: str) -> int | None:
    """一..九十九, simple hundreds and thousands (`一千零三`); None when it is not a
    well-formed numeral."""
    if re.fullmatch(r"[零〇一二两三四五六七八九]+", token) and len(token) > 1:
        return int("".join(str(CN_DIGITS[c]) for c in token))
    total, current = 0, 0
    for ch in token:
        if ch in CN_DIGITS:
            current = CN_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "千":
            total += (current or 1) * 1000
            current = 0
    if re.search(r"[千百][一二两三四五六七八九]$", token):   # `一千二` is 1200, `一百五` 150
        current *= 100 if token[-2] == "千" else 10
    return total + current


def mask_name(name: str | None) -> str:
    """张三 -> 张*, 欧阳修文 -> 欧***."""
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str:
    """13812341234 -> 138****1234."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "*" * len(phone)


PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phones_in(text: str) -> str:
    """Mask every mainland mobile number inside free text."""
    return PHONE_RE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def cut_to_bytes(text: str, limit: int) -> tuple[str, str]:
    """Split text on a character boundary so the head is at most `limit` UTF-8 bytes."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text, ""
    head = encoded[:limit].decode("utf-8", errors="ignore")
    # Prefer to cut at a line break near the end so a numbered item is not split.
    nl = head.rfind("\n")
    if nl > len(head) * 0.6:
        head = head[:nl]
    return head, text[len(head):].lstrip("\n")
