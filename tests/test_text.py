"""Input normalisation, numbers, masking, cutting."""
from __future__ import annotations

import logging

import pytest

from bot.logs import configure_logging
from bot.text import cut_to_bytes, digits_for_numerals, find_ordinal, mask_name, mask_phone, normalise, parse_number


@pytest.mark.parametrize("raw,expected", [
    ("  菜单！ ", "菜单"), ("ＡＢＣ１２３", "ABC123"), ("绑定　张三　１２３４。", "绑定 张三 1234"),
    ("？", "?"), ("报名  3 ", "报名 3"), ("", ""), (None, ""),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("3", 3), ("３", 3), ("三", 3), ("十", 10), ("十二", 12), ("二十", 20), ("九十九", 99),
    ("第2个", 2), ("两", 2), ("3号", 3), ("一二", 12), ("abc", None), ("3a", None), ("", None),
])
def test_parse_number(raw, expected):
    assert parse_number(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("我要第三个", 3), ("给我妈报那个第一个", 1), ("选2号", 2), ("就第十二门吧", 12),
    ("下礼拜三去不了", None), ("第一个还是第二个", None), ("我报一个", None), ("", None),
])
def test_find_ordinal(raw, expected):
    assert find_ordinal(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("十二号那个问题", "12号那个问题"), ("十一月的党费", "11月的党费"), ("打个五分", "打个5分"),
    ("十分紧急", "十分紧急"), ("二十五号", "25号"), ("几号来", "几号来"),
])
def test_numerals_before_units_read_as_digits(raw, expected):
    assert digits_for_numerals(raw) == expected


def test_masking():
    assert mask_name("张三") == "张*" and mask_name("欧阳修文") == "欧***"
    assert mask_phone("13812341234") == "138****1234"


def test_cut_never_splits_a_character():
    text = "老" * 1000
    head, rest = cut_to_bytes(text, 2000)
    assert len(head.encode()) <= 2000 and head + rest == text


def test_log_records_mask_phone_numbers(caplog):
    configure_logging()
    logging.getLogger("test").warning("user 13912345678 asked")
    assert "13912345678" not in caplog.text and "139****5678" in caplog.text
