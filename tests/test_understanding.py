"""The corpora, through the real webhook: the targets of issue 11 hold (scripts/understanding.py
plays them; scripts/bench_understanding.py prints the same figures per role)."""
from __future__ import annotations

import logging

import pytest

from scripts import understanding

TARGETS = {"understood": 95.0, "misread": 1.0, "dead_ends": 0}


@pytest.fixture(scope="module")
def scores():
    """Both labelled sets, each played once in a world of its own."""
    logging.disable(logging.CRITICAL)
    try:
        return understanding.run(("corpus", "trial"))
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("name", ["corpus", "trial"])
def test_understanding_targets_hold(scores, name):
    line = scores[name].summary()["all"]
    misses = [(r["said"], r["expect"], r["got"]) for r in scores[name].failures()]
    assert line["understood"] >= TARGETS["understood"], misses
    assert line["misread"] <= TARGETS["misread"], misses
    assert line["dead_ends"] == TARGETS["dead_ends"], misses


def test_the_corpus_is_big_and_mostly_not_commands():
    """At least 400 utterances of our own, a fifth of them chit-chat and non-problems."""
    lines = understanding.load_lines(understanding.CORPUS)
    assert len(lines) >= 400
    problems = {"report_prefilled", "反映问题", "emergency"}
    chat = [line for line in lines if line["expect"] in ("kind", "not_understood")]
    questions = [line for line in lines if line["expect"] not in problems | {"kind"}
                 and any(mark in line["said"] for mark in "？?吗呢么啥哪")]
    assert len(chat) >= 90 and len(chat) + len(questions) >= len(lines) / 5
    trial = understanding.load_lines(understanding.TRIAL_LABELS)
    assert len(trial) == 189 and all(line["expect"] for line in trial)


def test_a_miss_is_judged_by_its_label_not_by_the_reply():
    """The scorer itself: a kind word where a command was wanted is a dead end, the menu
    is not understood (no misread), another command is a misread."""
    score = understanding.Score()
    score.add("cadre", "idle", "怎么交党费", "党费", "kind")
    score.add("cadre", "idle", "怎么交党费", "党费", "not_understood")
    score.add("cadre", "idle", "怎么交党费", "党费", "课程")
    score.add("cadre", "idle", "怎么交党费", "党费", "党费")
    line = score.summary()["all"]
    assert (line["understood"], line["misread"], line["dead_ends"]) == (25.0, 50.0, 1)
