"""What people mean: plain text for matching, commands in their own words, kind words,
answers to a dialog's question, emergencies and problems told straight out.

Everything people may say lives in config/phrasings.yaml; this module only reads it.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from pypinyin import Style, pinyin

from bot.nearest import Nearest
from bot.settings import ROOT, SettingsError
from bot.text import CN_DIGITS, NAME_TO_NUMBER, digits_for_numerals

PHRASINGS_FILE = ROOT / "config" / "phrasings.yaml"
# Punctuation and symbols a voice transcript or a hurried thumb adds; removed before matching.
_NOT_WORDS = re.compile(r"[\s\W_]+", re.UNICODE)
ADDRESS_PREFIXES = ("小", "老")
# A surname and a title: how staff and old people address someone (`赵姐`, `王主任`).
ADDRESS_TITLES = ("主任", "科长", "局长", "处长", "老师", "师傅", "大姐", "大哥", "姐", "哥")
# Who speaks, said before an answer's words (`我不报了`, `那俺不看了`).
SUBJECTS = ("那我", "那俺", "我", "俺")
# A staff verb right after one of these is denied, not ordered (`不归我们科`, `别转`).
NEGATIONS = ("不", "别", "没")
# ... and one right before these was done already, not ordered now (`我跟他说了好几遍了`).
DONE = ("了", "过")
# A ticket's number in a staff member's sentence (`12号`, `第12号`), or one standing alone at
# either end (`接一下 21`); a phone number is never one.
_TICKET_NUMBER = re.compile(
    r"(?:(?<!\d)第?\s*(\d{1,6})\s*号|第\s*(\d{1,6})\s*个|人工\s*(\d{1,6}))")
# A date is no ticket (`下月3号`, `下个月的3号`, `12月份 3号`): taken out before counting numbers.
_DATE = re.compile(r"(?:\d{1,2}|下个?|这个?|本|上个?)\s*月\s*(?:份|的)?\s*\d{1,2}\s*[号日]")
_BARE_NUMBER = re.compile(r"(?:^|\s)(\d{1,6})(?=\s|$|[:：，,])")
_PHONE = re.compile(r"1[3-9]\d{9}")
# A ticket's number as staff write it in other systems (`#15`, `＃17`, `No.9`): read as `15号`.
_TICKET_MARK = re.compile(r"(?:#|(?<![a-z])no\.?)\s*(\d{1,6})(?!\d|\s*号)", re.IGNORECASE)
# A staff member asking about a ticket, not ordering something done to it.
_QUESTION = re.compile(r"(吗|没有|没|呢|\?)[\s.。!！]*$")
# The ticket's number as typed (full-width digits, numerals), taken out of the words after it.
_TYPED_NUMBER = re.compile(r"^[\s,，:：]*第?\s*[0-9０-９零〇一二两三四五六七八九十百]+\s*号|"
                           r"[\s,，]*第?\s*[0-9０-９零〇一二两三四五六七八九十百]+\s*号?\s*$")
# Taken off the front of the words after the verb (`可以办结了，…`); their end stays as typed.
_LEADING = " ，,。.：:；;、了吧啊呀"
# Words that take back what was just said, and what may follow them before the new words.
_WRONG = r"不对(?![劲头])|说错了|搞错了|不是[\s,，]*不是"
_THEN = r"[\s,，.。…!！:：;；]*(?:应该|还是|是)*"
# A correction said mid-answer (`二，不对，是三`, `一般吧……哎不对，还是紧急`): what follows counts.
_CORRECTION = re.compile(rf"(?:{_WRONG}|哦不){_THEN}")
# A change of mind in the middle of a message (`我想报名，噢不对，是退掉书法那个`): what follows
# is what they mean. It stands as a clause of its own (`我绑了好几次都不对，…` is none).
_CHANGED_MIND = re.compile(rf"(?:^|(?<=[\s,，.。…!！;；:：]))[哦噢喔啊嗯哎唉]*(?:我)?(?:刚才|刚刚)?"
                           rf"(?:{_WRONG}|发错了|打错了|弄错了|按错了|那条不算|那句不算|"
                           rf"(?<=[哦噢喔])不是?|(?<=[哦噢喔]说)错了|算了[\s,，]*还是)"
                           rf"[了啊哦]*(?=[\s,，.。…!！;；:：]|(?<=还是)){_THEN}")
# What a change of mind may correct alone: the number or the name and number a command
# word took (`撤回群发２，说错了，是３`, `已缴 13800001003，哦不对，是13800001004`).
_ARGS_ONLY = re.compile(r"(?:是|为|改成|应该是)?\s*(?:[\u4e00-\u9fa5]{2,4}\s*)?[0-9]+\s*号?")
# The words before a score in a sentence (`给你们打满分`, `就给个五星`).
_GIVING_A_SCORE = re.compile(r"^(就|那就|必须)?(给你们|给他们|给师傅|给)?(打|评|给)?(个|一个)?")
_SCORES = {"1", "2", "3", "4", "5"}
# Stars given as a rating (`★★★★`).
_STARS = re.compile(r"[★⭐🌟]+")
# Where a spoken or typed sentence breaks into clauses.
_BREAKS = r"，,。.！!？?；;、\s"
_HANZI = r"[\u4e00-\u9fa5]"
_REQUEST = re.compile(r"(帮|给|替)(我|他|她|俺|老人)")
_ASKS_BACK = re.compile(r"[?]\s*[。.!]?$|[吗么]\s*[。.!?]?$|还能|能不能|可不可以|会不会|是不是|要不要|行不行|怎么办|"
                        r"(?:啥|什么)意思|(?:你|您)再(?:说|念|讲)(?:一遍|一次)")
# A phone number or its last four digits, read out digit by digit as well (`幺零零三`).
_READ_OUT = re.compile(r"(?<![零〇一二三四五六七八九幺洞壹贰叁肆伍陆柒捌玖十百千万])"
                       r"[零〇一二三四五六七八九幺洞壹贰叁肆伍陆柒捌玖]{4}(?:[零〇一二三四五六七八九幺洞]{7})?"
                       r"(?![零〇一二三四五六七八九幺洞壹贰叁肆伍陆柒捌玖十百千万])")
# A work unit or branch said with one's name (`王建国 13800001001 市财政局 第一党支部`).
_UNIT = re.compile(r"[\u4e00-\u9fa5]{1,8}?(?:局|支部|委|厅|处|院|公司|单位)")
_PHONE_OR_LAST4 = re.compile(r"(?<![\d第])(?:1[3-9]\d{9}|\d{4})"   # not `1946年`, `2000块`
                             r"(?![\d年月日号岁块元分度点人次个楼层室栋米斤%])")
_NOT_A_NAME = re.compile(r"[我你他她爸妈绑帮替给的不了没吗呢啊吧么啥怎弄找想要是在有和跟就都还再刚]")  # no name has them
_CLAUSES = re.compile(f"[{_BREAKS}]+")
_CLAUSE = re.compile(f"[^{_BREAKS}]+")   # one clause, with where it stands
# An emoji as WeChat writes it in a message's text (`[微笑]`, `[OK]`).
_EMOJI_CODE = re.compile(r"\[([^\[\]\s]{1,4})\]")
# A score said as a number of points or stars (`给1分`, `5星`), not part of a larger number.
_SCORE_SAID = re.compile(r"(?<!\d)([1-5])(?:分|星|颗星)")
_MINUTES = re.compile(r"\d+分钟")
# Named groups a command pattern may capture, passed on in this order as the arguments.
ARG_GROUPS = ("n", "args", "text")
# The labelled examples' outcomes for kind words and for a problem told straight out.
KIND_LABEL, PROBLEM_LABEL = "kind", "report_prefilled"


@dataclass(frozen=True)
class Match:
    """A command found in a message: its word, how much of the message it covered, its args."""

    word: str
    score: int
    args: str = ""
    span: str = ""  # the words the pattern covered
    strong: bool = False  # matched by a pattern of `over_problem`: problem words do not win


@dataclass
class Phrasings:
    """The compiled contents of config/phrasings.yaml."""

    fillers: str
    openers: tuple[str, ...]
    kind: dict[str, frozenset]
    kind_words: tuple[str, ...]
    chat: list[re.Pattern]
    commands: dict[str, list[re.Pattern]]
    emergency: list[re.Pattern]
    not_now: tuple[str, ...]
    problem: list[re.Pattern]
    problem_min: int
    not_problem: tuple[str, ...]
    answers: dict[str, tuple[str, ...]]
    ratings: dict[int, tuple[str, ...]]
    vague: dict[str, tuple[str, ...]] = field(default_factory=dict)
    thread_takes: frozenset = frozenset()
    thread_leaves: list = field(default_factory=list)  # … unless about other problems
    sound_alike: tuple[str, ...] = ()
    not_slips: frozenset = frozenset()
    nearest: Nearest | None = None
    limits: tuple = ()
    telling: list = field(default_factory=list)
    asking: list = field(default_factory=list)
    still_wrong: list = field(default_factory=list)
    just_talking: list = field(default_factory=list)
    statement_min: int = 6
    statement_marks: tuple = ()
    yields_to_problem: frozenset = frozenset()  # commands a problem told with them outweighs
    staff_verbs: dict = field(default_factory=dict)
    over_problem: dict = field(default_factory=dict)
    staff_needs: dict = field(default_factory=dict)
    introductions: list = field(default_factory=list)
    introduction_kept: tuple = ()
    course_words: tuple = ()  # (everyday name, the course's own word), longest first
    topics: dict = field(default_factory=dict)  # questions about the conversation itself
    ticket_alone: list = field(default_factory=list)  # `12号` said alone
    inquiry: list = field(default_factory=list)  # a question about a rule, for a person
    not_inquiry: tuple = ()  # ... unless something is said to have gone wrong
    ticket_choices: dict = field(default_factory=dict)  # role -> commands asked about then
    _only_words: dict = field(default_factory=dict)  # group -> first char -> (word, own)
    emoji: frozenset = frozenset()  # WeChat's emoji names, typed as `[微笑]`
    now: tuple = ()  # words that say it is happening now (`刚才`, `这会儿`)
    one_go: dict = field(default_factory=dict)  # binding_in_one_go: group -> words
    one_go_around: tuple = ()  # the words that may stand around them, longest first
    not_now_unless_now: frozenset = frozenset()  # not_now words a word of `now` outweighs
    report_openings: list = field(default_factory=list)  # `我要反映问题，…` before a problem
    report_told_min: int = 30  # ... and this much after it, or a problem's words
    report_another: list = field(default_factory=list)  # `我又有个问题，…`: in a thread too
    report_another_unless: tuple = ()  # … unless it is for whoever comes (`…师傅来了顺便看看`)
    step_asked: list = field(default_factory=list)  # a question about the question asked
    take_back: list = field(default_factory=list)  # a wish taken back in the next clause
    take_back_markers: tuple = ()  # ... after one of these second thoughts
    surnames: frozenset = frozenset()  # the first character of a name said alone
    step_asked_max: int = 20  # ... in a message no longer than this (made plain)

    # ---- slips of the finger and of the tongue ---------------------------------------------
    def corrected(self, plain: str) -> str:
        """Key words typed or heard wrong by sound, one character off (当费 → 党费, 转人公 →
        转人工, 报民 → 报名, 解邦 → 解绑); the message itself when nothing was fixed."""
        if not plain or not self.sound_alike:
            return plain
        sounds = _sounds(plain)
        for word in self.sound_alike:
            size, want = len(word), _sounds(word)
            i = 0
            while i + size <= len(plain):
                window = plain[i:i + size]
                if window != word and window not in self.not_slips and \
                        sum(a != b for a, b in zip(window, word)) == 1 and \
                        sounds[i:i + size] == want:
                    plain = plain[:i] + word + plain[i + size:]
                    i += size
                else:
                    i += 1
        return plain

    def without_emoji(self, text: str) -> str:
        """The message with its WeChat emoji codes taken out ("" when it is nothing else)."""
        if "[" not in text or not self.emoji:
            return text
        rest = _EMOJI_CODE.sub(lambda m: " " if m.group(1) in self.emoji else m.group(0), text)
        return rest if _NOT_WORDS.sub("", rest) else ""

    def course_name(self, text: str) -> str:
        """The words with a class's everyday name put as courses are named (`写毛笔字的` →
        `书法的`, `打太极` → `太极`): what the course list is searched for."""
        for said, own in self.course_words:
            text = text.replace(said, own)
        return text

    # ---- plain text ------------------------------------------------------------------------
    def plain(self, text: str | None, openers: bool = True) -> str:
        """Half-width, no spaces or punctuation, no filler particles, no polite opener; WeChat's
        emoji codes (`[捂脸]`) taken out unless they are all there is (`[强]` at a question)."""
        text = self.without_emoji(text or "") or text or ""
        text = unicodedata.normalize("NFKC", text).lower()
        text = _STARS.sub(lambda m: f"{len(m.group(0))}星", text)  # ★★★★ is 4星
        text = digits_for_numerals(_NOT_WORDS.sub("", _TICKET_MARK.sub(r"\1号", text)))
        kept = "".join(ch for ch in text if ch not in self.fillers)
        text = kept or text
        changed = openers
        while changed:
            changed = False
            for opener in self.openers:
                if text.startswith(opener) and len(text) > len(opener):
                    text, changed = text[len(opener):], True
                    break
        return text

    def topic(self, text: str) -> tuple[str, str] | None:
        """A question about the conversation itself, answered by a line of its own
        (`等一下，我问问我儿子`: we wait; `提交了以后呢`: what happens next): (its name, the
        rest of the message), None for others. Read with its opening words kept (`我问问…`
        is an opener elsewhere)."""
        plain = self.plain(text, openers=False)
        for name, patterns in self.topics.items():
            for pattern in patterns:
                m = pattern.search(plain)
                if m is not None:
                    return name, plain[:m.start()] + plain[m.end():]
        return None

    def ticket_said_alone(self, plain: str) -> int | None:
        """The number of a ticket said with nothing to do with it (`12号`, `第15号问题请处理
        一下`), else None."""
        for pattern in self.ticket_alone:
            m = pattern.search(plain)
            if m is not None:
                return int(m.group("n"))
        return None

    # ---- what kind of message ----------------------------------------------------------------
    def kind_of(self, plain: str, text: str = "") -> str | None:
        """`thanks` / `ok` / `greeting` when the message is made only of such words (or of
        emoji: a thumbs-up is a kind word too)."""
        if not plain:
            return "greeting" if any(unicodedata.category(c) == "So" for c in text) else None
        if "[" in text and not self.without_emoji(text):
            return "greeting"   # `[捂脸]`, `[玫瑰][玫瑰]`
        found, rest = [], plain
        while rest:
            word = next((w for w in self.kind_words if rest.startswith(w)), None)
            title = next((t for t in ADDRESS_TITLES if rest[1:].startswith(t)), None)
            if word is None and rest.startswith(ADDRESS_PREFIXES) and len(rest) >= 2:
                word = rest[:2]  # 小孙, 老李: how people address whoever answered them
            elif word is None and title is not None:
                word = rest[:1 + len(title)]  # 赵姐, 王主任
            elif word is None:
                return None
            found.append(word)
            rest = rest[len(word):]
        for group in ("thanks", "greeting", "ok"):
            if any(w in self.kind[group] for w in found):
                return group
        return "ok"

    def thanks_in(self, plain: str) -> bool:
        """Whether the message thanks someone, among whatever else it says."""
        return any(len(w) > 1 and w in plain for w in self.kind["thanks"])

    def chat_score(self, plain: str) -> int:
        """How much of the message reads as chit-chat or a question about the bureau
        (the longest chat pattern's match; 0 when none)."""
        found = max((len(m.group(0)) for p in self.chat for m in [p.search(plain)] if m),
                    default=0)
        return found or int(self.guess(plain) == (KIND_LABEL,))

    def emergency_in(self, plain: str) -> bool:
        """Someone is in danger now (and the words do not say it was long ago)."""
        if not any(p.search(plain) for p in self.emergency):
            return False
        against = {w for w in self.not_now if w in plain}
        return not against or (against <= self.not_now_unless_now and
                               any(w in plain for w in self.now))  # `以前没这样过`, `刚才`

    def telling_only(self, plain: str, text: str) -> bool:
        """The message tells something (long ago, someone else's doings, a plan, praise) and
        asks nothing: a command word in it is a guess, to be asked about, not run. Asking is
        looked for in the words as typed too (`我想`, `呀` are gone from `plain`)."""
        typed = unicodedata.normalize("NFKC", text or "")
        if self.just_talking_in(plain):  # `…，就是跟你唠唠`
            return True
        return any(p.search(plain) for p in self.telling) and \
            not any(p.search(plain) or p.search(typed) for p in self.asking) and \
            not any(p.search(plain) for p in self.still_wrong)

    def inquiry_in(self, plain: str) -> bool:
        """A problem's words asked as a question about a rule (`护理补贴怎么申请`), and
        nothing said to have gone wrong (`…只报了一万二` is a report)."""
        return any(p.search(plain) for p in self.inquiry) and \
            not any(w in plain for w in self.not_inquiry)

    def just_talking_in(self, plain: str) -> bool:
        """Said to be just talking (`…，跟你们唠唠`, `今天单子真多`): chat, whatever else."""
        return any(p.search(plain) for p in self.just_talking)

    def statement(self, plain: str, text: str) -> bool:
        """A sentence that tells something and asks nothing (`老哥几个下午约好去下象棋`): when
        nothing else understood it, it is chat to be answered kindly, not "not understood"."""
        typed = unicodedata.normalize("NFKC", text or "")
        return self._sentence(plain) and \
            not any(p.search(plain) or p.search(typed) for p in self.asking)

    def aside(self, plain: str, text: str) -> bool:
        """A staff member's sentence with no number in it (`这周单子真不少`, `老周你那边弄完
        没？`), or with one and no verb of an order (`12号那老爷子脾气大，打电话注意语气`): a
        remark, not an order about a ticket — answered as chat, with the commands; one with a
        number and an order's verb may be an order misphrased and gets "not understood"."""
        typed = digits_for_numerals(unicodedata.normalize("NFKC", text or ""))
        if not self._sentence(plain):
            return False
        return not re.search(r"\d", typed) or \
            not any(v in typed for verbs in self.staff_verbs.values() for v in verbs)

    def _sentence(self, plain: str) -> bool:
        """Long enough and with a mark of a sentence (`桌子椅子板凳` has none)."""
        return len(plain) >= self.statement_min and \
            any(mark in plain for mark in self.statement_marks)

    def problem_in(self, plain: str) -> bool:
        """A problem told straight out: long enough, and says what is wrong."""
        if len(plain) < self.problem_min or any(w in plain for w in self.not_problem):
            return False
        return any(p.search(plain) for p in self.problem) or \
            self.guess(plain) == (PROBLEM_LABEL,)

    @staticmethod
    def asks_back(text: str) -> bool:
        """Whether the message asks something (`解了还能再绑吗？`, `提交了能改吗`): a question
        at a yes-or-no question is no yes, whatever yes-words it has."""
        return bool(_ASKS_BACK.search(unicodedata.normalize("NFKC", text or "").strip()))

    def asks_about_step(self, plain: str) -> bool:
        """A question about the question being asked (`紧急是啥标准`, `随便说都行吗`), too short
        to tell anything else."""
        return len(plain) <= self.step_asked_max and \
            any(p.search(plain) for p in self.step_asked)

    @classmethod
    def only_asks(cls, text: str) -> bool:
        """A question that is no polite request (`能不能帮我报一个`, `给我报上吗` ask for it)."""
        return cls.asks_back(text) and not _REQUEST.search(text or "")

    def binding_in_one_go(self, text: str) -> str | None:
        """`name last4` when a message names someone and gives one phone number's digits (the
        last four, or all eleven; read out too) and says nothing of binding for another
        (`刚才输错了 重新来 李秀英 1002` -> `李秀英 1002`); else None."""
        typed = _READ_OUT.sub(lambda m: "".join(str(CN_DIGITS[c]) for c in m.group(0)),
                              unicodedata.normalize("NFKC", text or ""))
        numbers = set(_PHONE_OR_LAST4.findall(typed))
        for_another = any(w in typed for w in self.one_go.get("for_someone_else", ())) and \
            not any(w in typed for w in self.one_go.get("on_their_phone", ()))
        if len(numbers) != 1 or for_another:
            return None
        number = numbers.pop()
        said = "|".join(map(re.escape, self.one_go.get("name_said", ())))
        found = [m.group(1) for m in re.finditer(
            rf"(?:{said})[\s:：]*({_HANZI}{{2,3}})(?!{_HANZI})", typed)] if said else []
        found += [m.group(1) or m.group(2) for m in re.finditer(   # a word beside the number
            rf"(?:^|[{_BREAKS}])({_HANZI}{{2,3}}){NAME_TO_NUMBER}{number}|"
            rf"{number}[\s,，:：]*({_HANZI}{{2,3}})(?:$|[{_BREAKS}])", typed)]
        names = [n for n in dict.fromkeys(found) if not _NOT_A_NAME.search(n) and
                 not any(w in n for w in self.one_go.get("not_names", ()))]
        if len(names) != 1 or self.problem_in(self.plain(typed)):
            return None   # `1203 漏水`, `退休金 2000`: no name, no binding
        # Nothing else may be said but the words around a name and its number, a unit, and
        # kind words: `张师傅 13912345678 让他来修` is no binding.
        rest = typed.replace(names[0], " ", 1).replace(number, " ", 1)
        for word in self.one_go_around:
            rest = rest.replace(word, " ")
        left = self.plain(_UNIT.sub(" ", rest))
        if left and self.kind_of(left) is None and not self.only(left, "hesitation"):
            return None
        return f"{names[0]} {number[-4:]}"

    def half_binding(self, text: str) -> str | None:
        """Half of what binding takes, said alone by someone not bound: a name (`王建国`) or
        a phone number's digits (`1001`, `13800001001`); the name to bind with ("" for the
        digits, asked for in order), None for anything else."""
        typed = unicodedata.normalize("NFKC", text or "").strip(" 。.!！,，")
        if _PHONE_OR_LAST4.fullmatch(typed):
            return ""
        if re.fullmatch(f"{_HANZI}{{2,3}}", typed) and not _NOT_A_NAME.search(typed) and \
                typed[0] in self.surnames and \
                not any(w in typed for w in self.one_go.get("not_names", ())) and \
                self.kind_of(self.plain(typed)) is None:
            return typed
        return None

    # ---- commands ------------------------------------------------------------------------
    def commands_in(self, plain: str, allowed) -> list[Match]:
        """Each allowed command's best match in the message, best first."""
        best: dict[str, Match] = {}
        for strong, table in ((False, self.commands), (True, self.over_problem)):
            for word, patterns in table.items():
                if word not in allowed:
                    continue
                for pattern in patterns:
                    m = pattern.search(plain)
                    if m is None:
                        continue
                    score = len(m.group(0))
                    was = best.get(word)
                    if was is None or score > was.score or (strong and score == was.score):
                        parts = [m.groupdict().get(g) for g in ARG_GROUPS]
                        # strong when any pattern of `over_problem` fits, however long
                        # the words a plain pattern covered (`…来不来走访，…去医院复查`)
                        best[word] = Match(word, score, " ".join(p for p in parts if p),
                                           m.group(0), strong or (was is not None and
                                                                  was.strong))
                    elif strong and not was.strong:
                        best[word] = replace(was, strong=True)
        return sorted(best.values(), key=lambda m: (-m.score, not m.strong))

    # ---- what no pattern knows ---------------------------------------------------------------
    def guess(self, plain: str) -> tuple[str, ...]:
        """What the labelled examples say a message that no pattern fits (and that has no slip
        to correct) means: one label, two (ask which), or none (bot/nearest.py)."""
        if self.nearest is None or not plain or not self._silent_on(plain) or \
                self.corrected(plain) != plain:
            return ()
        return self.nearest.guess(plain, *self.limits)

    def commands_guessed(self, plain: str, allowed) -> tuple[str, ...]:
        """The command the examples say an otherwise not understood message means (two: ask
        which), when the user may use it; () otherwise."""
        guessed = self.guess(plain)
        return guessed if guessed and set(guessed) <= set(allowed) else ()

    def _silent_on(self, plain: str) -> bool:
        """No command, chat or problem pattern fits (the rules know best where they speak)."""
        patterns = [*self.chat, *self.problem, *(p for ps in self.commands.values() for p in ps)]
        return not any(p.search(plain) for p in patterns)

    # ---- answers to a question -----------------------------------------------------------
    def answer(self, plain: str, *names: str) -> str | None:
        """Which of the named answer groups (`yes`, `no`, `urgent`, …) the message gives.

        The longest word found decides (`不满意` over `满意`, `4分` over `还行`); a one-character
        word counts only as the whole message; two groups found equally long is no answer.
        """
        hits: list[tuple[int, bool, str]] = []
        for name in names:
            for word in self.answers.get(name, ()):
                if plain == word or (len(word) > 1 and word in plain):
                    # a number said outright (`4分`) outweighs words as long (`还行`)
                    hits.append((len(word), any(c.isdigit() for c in word), name))
        if not hits:
            return None
        hits.sort(reverse=True)
        top = [name for size, digit, name in hits if (size, digit) == hits[0][:2]]
        return top[0] if len(set(top)) == 1 else None

    def only(self, plain: str, group: str) -> bool:
        """Whether the message is made only of one answer group's words (and kind words):
        `算了，不弄了` quits, `周六排练取消` does not."""
        by_first = self._only_words.get(group)
        if by_first is None:  # built once per group: this runs on every message (`回菜单`)
            own = set(self.answers.get(group, ()))
            by_first = self._only_words[group] = {}
            for w in own | set(self.kind_words):
                if w:
                    by_first.setdefault(w[0], []).append((w, w in own))
        subject = next((s for s in SUBJECTS if plain.startswith(s) and plain != s), "")
        rest = plain[len(subject):]  # `我不报了` is `不报了`
        # Every way of reading it as such words (`好的好的` is yes twice, not one kind word;
        # `不好意思点错了` is a kind word and a no): reached[i] says whether a reading of the
        # first i characters used one of the group's own words.
        reached: dict[int, bool] = {0: False}
        for at in range(len(rest)):
            if at not in reached:
                continue
            for w, own_word in by_first.get(rest[at], ()):
                if rest.startswith(w, at):
                    end = at + len(w)
                    reached[end] = reached.get(end, False) or own_word or reached[at]
        return bool(rest) and reached.get(len(rest), False)

    def staff_sentence(self, text: str, allowed) -> tuple[str, str] | None:
        """A staff member's order about a numbered ticket in free order (`回一下12号，供热公司
        已经派单了`, `24号结案，说明：…`, `这个单可以办结了 ８号`): (command word, args as the
        command takes them: `N` and the words after the verb, as typed, punctuation kept);
        None when there is not exactly one ticket number, or no verb of staff_sentences fits."""
        raw = (text or "").strip()
        typed = _DATE.sub("", digits_for_numerals(
            _TICKET_MARK.sub(r"\1号", unicodedata.normalize("NFKC", raw))))
        numbers = {next(g for g in m.groups() if g) for m in _TICKET_NUMBER.finditer(typed)} or \
            {m.group(1) for m in _BARE_NUMBER.finditer(typed)}
        if len(numbers) != 1 or _QUESTION.search(typed) or \
                (_PHONE.search(typed) and not _TICKET_NUMBER.search(typed)):
            return None   # a phone number is no ticket, but may be told about one
        for word, verbs in self.staff_verbs.items():
            if word not in allowed or (word in self.staff_needs and
                                       not any(w in raw for w in self.staff_needs[word])):
                continue
            found = [(at, -len(v), v) for v in verbs if (at := raw.find(v)) >= 0
                     and raw[at - 1:at] not in NEGATIONS  # `不归我们科` claims nothing
                     and raw[at + len(v):at + len(v) + 1] not in DONE]  # `我跟他说了好几遍`
            if found:
                at, _, verb = min(found)
                rest = _TYPED_NUMBER.sub("", raw[at + len(verb):], count=1)
                return word, f"{numbers.pop()} {rest.lstrip(_LEADING).rstrip()}".strip()
        return None

    def as_typed(self, plain: str, raw: str) -> str | None:
        """The words of `plain` (a part of a message made plain) as they were typed in `raw`,
        spaces and punctuation kept up to the message's end; None when they cannot be found
        (numerals read as digits, full-width forms)."""
        if not plain:
            return None
        gaps = rf"[\s\W_{re.escape(self.fillers)}]*"  # what `plain` took out
        m = re.search(gaps.join(re.escape(c) for c in plain) + gaps + "$", raw)
        return m.group(0).strip() if m else None

    @staticmethod
    def after_correction(text: str) -> str | None:
        """What follows the last correction in an answer (`二，不对，是三` -> `三`); None
        when there is none, or nothing follows it."""
        parts = _CORRECTION.split(text or "")
        rest = parts[-1].strip(" ,，.。…!！") if len(parts) > 1 else ""
        return rest or None

    def leads_with(self, text: str, group: str) -> bool:
        """Whether the message opens with a clause of one answer group's words and goes on
        (`算了，这几个时间我都去不了`, `唉，不弄了，回头让我闺女弄`): the reason after it."""
        first = self.first_clause(text)
        return first is not None and self.only(first, group)

    def ends_with(self, text: str, group: str) -> bool:
        """Whether the message ends with a clause of one answer group's words after a reason
        (`都没啥意思，拉倒吧`, `没有我想学的，算了`)."""
        last = self.last_clause(text)
        return last is not None and self.only(last, group)

    def first_clause(self, text: str) -> str | None:
        """The first clause of a message of several, made plain, after any that only hesitate
        (`嗯，那个，算了吧，…`); None for a single clause."""
        clauses = self._clauses(text)
        while len(clauses) > 2 and self.only(self.plain(clauses[0]), "hesitation"):
            clauses = clauses[1:]
        return self.plain(clauses[0]) if len(clauses) > 1 else None

    def in_a_clause(self, text: str, group: str) -> bool:
        """Whether one clause of a message of several is only one answer group's words
        (`…，不看了，退出吧，谢谢你们啊`): said in the middle of a long voice message; it
        includes what `leads_with` and `ends_with` find."""
        clauses = self._clauses(text)
        return len(clauses) > 1 and any(self.only(self.plain(c), group) for c in clauses)

    def after_report_opening(self, text: str, another: bool = False) -> str | None:
        """The problem told after a clause that says one is reporting (`我要反映问题，嗯，就是
        我们社区那个老年食堂…`; with `another`, only one that says it is another problem:
        `我又有个问题，…`), as typed; None when there is no such opening or too little
        follows it."""
        openings = self.report_another if another else \
            [*self.report_openings, *self.report_another]
        raw = text or ""   # as typed: the description keeps the user's punctuation
        for m in _CLAUSE.finditer(raw):
            clause = self.plain(m.group(0))
            if not clause.strip(self.fillers) or self.only(clause, "hesitation") or \
                    self.kind_of(clause) is not None:
                continue   # `小刘啊，`, `嗯，` before it
            if not any(p.fullmatch(clause) for p in openings) or \
                    (clause in self.commands and raw[m.end():m.end() + 1].isspace()):
                return None   # `反映问题 暖气不热`: a command word and a space keep the command
            rest = raw[m.end():].lstrip(" ,，、.。…!！")
            told = self.plain(rest)
            if another and (any(w in told for w in self.report_another_unless) or
                            self.asks_back(rest)):
                return None   # `…师傅来了能不能顺便给看看`, `还有个问题，今天能修好吗`: the thread
            return rest if len(told) >= self.report_told_min or self.problem_in(told) else None
        return None

    def last_clause(self, text: str) -> str | None:
        """The last clause of a message of several, made plain; None for a single clause."""
        clauses = self._clauses(text)
        return self.plain(clauses[-1]) if len(clauses) > 1 else None

    def without(self, plain: str, group: str) -> str:
        """`plain` with one answer group's words taken out (longest first)."""
        for word in sorted(self.answers.get(group, ()), key=len, reverse=True):
            plain = plain.replace(word, "")
        return plain

    def clauses(self, text: str) -> list[str]:
        """The clauses of a message, each made plain."""
        return [self.plain(c) for c in self._clauses(text)]

    def after_pauses(self, text: str) -> str | None:
        """The clauses after the pause that opens a message (`等一下，等一下，我先问问，…`),
        made plain; None for a single clause."""
        clauses = self._clauses(text)
        if len(clauses) < 2:
            return None
        clauses = clauses[1:]
        while len(clauses) > 1 and self.only(self.plain(clauses[0]), "pause"):
            clauses = clauses[1:]
        return self.plain("".join(clauses))

    def _clauses(self, text: str) -> list[str]:
        return [c for c in _CLAUSES.split(unicodedata.normalize("NFKC", text or ""))
                if self.plain(c, openers=False).strip(self.fillers)]  # `唉，` is no clause

    def after_introduction(self, text: str) -> str | None:
        """What a message says after the sender says who they are (`你好，我是王建国的女儿，
        我爸家的燃气灶打不着火了` -> `我爸家的燃气灶打不着火了`), as typed; None when it
        opens with no introduction, or says nothing else."""
        raw = unicodedata.normalize("NFKC", text or "")
        introduced = False
        for m in _CLAUSE.finditer(raw):
            clause = self.plain(m.group(0))
            if not clause.strip(self.fillers) or self.kind_of(clause) is not None:
                continue   # `你好，`, `小同志，` before it
            if any(p.fullmatch(clause) for p in self.introductions):
                introduced = True
                continue
            rest = raw[m.start():].strip()
            if any(w in rest for w in self.introduction_kept):
                return None   # `我是王建国的儿子，想绑定一下`: who they are is the point
            return rest if introduced else None
        return None

    def after_pause(self, text: str) -> str | None:
        """What follows a pause word in the middle of a message when what comes before it is
        only kind words or chat (`谢谢你们上回来看我，对了，听说开书法课了，给我报上`), as typed;
        None otherwise (a problem told before the pause is not passed over)."""
        raw = unicodedata.normalize("NFKC", text or "")
        clauses = list(_CLAUSE.finditer(raw))
        for i, m in enumerate(clauses[1:-1], start=1):
            if not self.only(self.plain(m.group(0), openers=False), "pause"):
                continue
            before = self.plain(raw[:m.start()])
            if self.problem_in(before) and not self.telling_only(before, raw[:m.start()]):
                return None
            if self.kind_of(before) is None and not self.chat_score(before) and \
                    not self.telling_only(before, raw[:m.start()]):
                return None
            return raw[clauses[i + 1].start():].strip()
        return None

    def after_changed_mind(self, text: str) -> str | None:
        """What follows the last change of mind in a message (`我想反映个事，哦不对，我是想问
        上回反映的楼道灯修了没` -> `我是想问上回…`), as typed; None when there is none,
        nothing follows it, or a problem was told before it (it is not taken back)."""
        changed = self.changed_mind(text)
        return changed[1] if changed else None

    def changed_mind(self, text: str) -> tuple[str, str] | None:
        """(what was said before the last change of mind, what follows it), as typed."""
        raw = unicodedata.normalize("NFKC", text or "")
        last = None
        for last in _CHANGED_MIND.finditer(raw):
            pass
        if last is None:
            return None
        told = _CHANGED_MIND.sub("", raw[:last.start()])  # `发错了` is no problem told
        before, rest = self.plain(told), raw[last.end():].strip(" ,，.。…!！")
        if not self.plain(rest).strip(self.fillers):
            return None
        if self.problem_in(before) and not self.telling_only(before, told):
            return None
        return told.strip(" ,，.。…!！"), rest

    def args_only(self, text: str) -> str | None:
        """The number (or name and number) a correction gives alone (`是３` -> `3`), else None."""
        typed = unicodedata.normalize("NFKC", text or "").strip(" ,，.。…!！")
        if not _ARGS_ONLY.fullmatch(typed):
            return None
        args = re.sub(r"^(?:是|为|改成|应该是)\s*", "", typed)
        name = re.match(f"{_HANZI}+", args)
        if name and (_NOT_A_NAME.search(name.group(0)) or   # `办结13`, `我先看看13号`
                     name.group(0)[0] not in self.surnames):
            return None
        return args

    def taken_back(self, text: str) -> bool:
        """A message that says a wish and then takes it back (`人工。哦不用了，我找到了`,
        `解绑，哎呀按错了，不解不解`, `下班，哦等等，还有一单没处理，先不下了`): a clause after the
        first in words of `take_back` after a marker of second thoughts (`哦`, `等等`). The
        caller has found no change of mind to something else (Router.understand)."""
        if not any(m in (text or "") for m in self.take_back_markers):
            return False   # most messages: no second thoughts, nothing more to read
        raw = self._clauses(text)
        if len(raw) < 2 or not any(m in "".join(raw[1:]) for m in self.take_back_markers):
            return False
        back = next((i for i, c in enumerate(raw) if i and
                     any(p.search(self.plain(c)) for p in self.take_back)), None)
        if back is None:
            return False
        after = [self.plain(c) for c in raw[back + 1:]]   # `人工，哦不用了，家里暖气不热`: told
        return not any(self.problem_in(c) or self.commands_in(c, self.commands) for c in after)

    def rating(self, plain: str) -> int | None:
        """A 1–5 score said in words (`非常满意` 5 … `很差` 1), or None; a number said
        outright wins over words (`不满意，给1分` is 1)."""
        plain = _MINUTES.sub("", plain)   # `3分钟就修好了` says no score
        said = _SCORE_SAID.findall(plain)
        if len(set(said)) == 1:
            return int(said[0])
        found = self.answer(plain, *(f"rating{n}" for n in self.ratings))
        return int(found[len("rating"):]) if found else None

    def rating_in(self, text: str) -> int | None:
        """A score said at the end or the start of a sentence about the fix (`修得挺好的，
        师傅也客气，给你们打满分吧`, `不满意，还是不热`), or None."""
        for clause in (self.last_clause(text), self.first_clause(text)):
            if clause:
                score = self.rating(_GIVING_A_SCORE.sub("", clause, count=1))
                if score is not None:
                    return score
        return None

    def score_given(self, text: str) -> int | None:
        """A bare 1–5 after a word of giving, as a clause of its own (`打个4吧，下午说来晚上才
        到`, `我妈说满意，给5`): the number is the score; None otherwise."""
        for clause in (self.last_clause(text), self.first_clause(text), text):
            plain = self.plain(clause or "", openers=False)
            m = _GIVING_A_SCORE.match(plain)
            if m and (m.group(2) or m.group(3)) and plain[m.end():] in _SCORES:
                return int(plain[m.end():])
        return None


# Sounds that people (and dialects, and voice input) run together: zh/z, ch/c, sh/s, n/l,
# and -ng endings (报名 baoming heard as 报民 baomin).
_BLUR = ((re.compile(r"^zh"), "z"), (re.compile(r"^ch"), "c"), (re.compile(r"^sh"), "s"),
         (re.compile(r"^l"), "n"), (re.compile(r"ng$"), "n"))


def _sounds(text: str) -> list[str]:
    """One blurred toneless syllable per character (other characters stand for themselves)."""
    out = []
    for (syllable, *_) in pinyin(text, style=Style.NORMAL, errors=lambda s: list(s)):
        for pattern, repl in _BLUR:
            syllable = pattern.sub(repl, syllable)
        out.append(syllable)
    return out


def _compile(patterns, where: str) -> list[re.Pattern]:
    out = []
    for p in patterns or []:
        try:
            out.append(re.compile(str(p)))
        except re.error as exc:
            raise SettingsError(f"{where}: bad pattern {p!r}: {exc}") from exc
    return out


def _words(values, where: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) for v in values):
        raise SettingsError(f"{where} must be a list of words")
    return tuple(str(v) for v in values)


def load(path: Path = PHRASINGS_FILE, command_words=None) -> Phrasings:
    """Read and check the phrasings file (a mistake stops the start with a clear message)."""
    where = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{where}: cannot be read: {exc}") from exc
    ignore = data.get("ignore") or {}
    fillers = "".join(_words(ignore.get("fillers", []), f"{where} ignore.fillers"))
    raw = Phrasings(fillers=fillers, openers=(), kind={}, kind_words=(), chat=[], commands={},
                    emergency=[], not_now=(), problem=[], problem_min=0, not_problem=(),
                    answers={}, ratings={})
    openers = tuple(sorted({raw.plain(w) for w in _words(ignore.get("openers", []),
                                                          f"{where} ignore.openers")}
                           - {""}, key=len, reverse=True))
    raw.openers = ()
    kind = {group: frozenset(raw.plain(w) for w in _words(words, f"{where} kind.{group}"))
            for group, words in (data.get("kind") or {}).items()}
    for group in ("thanks", "ok", "greeting"):
        kind.setdefault(group, frozenset())
    commands = {str(word): _compile(p, f"{where} commands.{word}")
                for word, p in (data.get("commands") or {}).items()}
    _commands_only(commands, command_words, f"{where} commands")
    answers = {str(k): tuple(raw.plain(w) for w in _words(v, f"{where} answers.{k}"))
               for k, v in (data.get("answers") or {}).items() if k != "ratings"}
    ratings = {}
    for score, words in ((data.get("answers") or {}).get("ratings") or {}).items():
        if int(score) not in range(1, 6):
            raise SettingsError(f"{where}: answers.ratings keys are 1 to 5, got {score!r}")
        ratings[int(score)] = tuple(raw.plain(w) for w in _words(words, f"{where} ratings"))
        answers[f"rating{int(score)}"] = ratings[int(score)]
    emergency, problem = data.get("emergency") or {}, data.get("problem") or {}
    vague = {raw.plain(k): _words(v, f"{where} vague.{k}") for k, v in
             (data.get("vague") or {}).items()}
    takes = frozenset(_words(data.get("thread_takes", []), f"{where} thread_takes"))
    slips = data.get("slips") or {}
    sound_alike = tuple(sorted(_words(slips.get("words", []), f"{where} slips.words"), key=len,
                               reverse=True))
    not_slips = frozenset(_words(slips.get("not", []), f"{where} slips.not"))
    _commands_only([w for v in vague.values() for w in v], command_words, f"{where} vague")
    _commands_only(takes, command_words, f"{where} thread_takes")
    phrasings = Phrasings(
        fillers=fillers, openers=openers, kind=kind,
        kind_words=tuple(sorted(set().union(*kind.values()), key=len, reverse=True)),
        chat=_compile(data.get("chat"), f"{where} chat"), commands=commands,
        emergency=_compile(emergency.get("patterns"), f"{where} emergency"),
        not_now=_words(emergency.get("not_now", []), f"{where} emergency.not_now"),
        problem=_compile(problem.get("patterns"), f"{where} problem"),
        problem_min=int(problem.get("min_chars", 5)),
        not_problem=_words(problem.get("not_problem", []), f"{where} problem.not_problem"),
        answers=answers, ratings=ratings, vague=vague, thread_takes=takes,
        sound_alike=sound_alike, not_slips=not_slips)
    telling = data.get("telling") or {}
    phrasings.telling = _compile(telling.get("patterns"), f"{where} telling")
    phrasings.thread_leaves = _compile(data.get("thread_leaves"), f"{where} thread_leaves")
    step_asked = data.get("step_asked") or {}
    phrasings.step_asked = _compile(step_asked.get("patterns"), f"{where} step_asked")
    phrasings.step_asked_max = int(step_asked.get("max_chars", 20))
    take_back = data.get("take_back") or {}
    phrasings.take_back = _compile(take_back.get("patterns"), f"{where} take_back")
    phrasings.take_back_markers = _words(take_back.get("markers", []), f"{where} take_back.markers")
    phrasings.asking = _compile(telling.get("asking"), f"{where} telling.asking")
    phrasings.still_wrong = _compile(telling.get("still_wrong"), f"{where} telling.still_wrong")
    phrasings.just_talking = _compile(telling.get("just_talking"), f"{where} telling.just_talking")
    phrasings.statement_min = int(telling.get("statement_min", 6))
    phrasings.statement_marks = _words(telling.get("statement_marks", []),
                                       f"{where} telling.statement_marks")
    phrasings.over_problem = {str(w): _compile(p, f"{where} over_problem.{w}")
                              for w, p in (data.get("over_problem") or {}).items()}
    _commands_only(phrasings.over_problem, command_words, f"{where} over_problem")
    staff = data.get("staff_sentences") or {}
    phrasings.staff_verbs = {str(w): tuple(sorted(_words(v, f"{where} staff_sentences.{w}"),
                                                  key=len, reverse=True))
                             for w, v in (staff.get("verbs") or {}).items()}
    phrasings.staff_needs = {str(w): _words(v, f"{where} staff_sentences.needs.{w}")
                             for w, v in (staff.get("needs") or {}).items()}
    _commands_only([*phrasings.staff_verbs, *phrasings.staff_needs], command_words,
                   f"{where} staff_sentences")
    introductions = data.get("introductions") or {}
    phrasings.introductions = _compile(introductions.get("patterns"),
                                       f"{where} introductions")
    phrasings.introduction_kept = _words(introductions.get("kept_with", []),
                                         f"{where} introductions.kept_with")
    phrasings.course_words = tuple(sorted(
        ((said, str(own)) for own, words in (data.get("course_words") or {}).items()
         for said in _words(words, f"{where} course_words.{own}")),
        key=lambda pair: len(pair[0]), reverse=True))
    alone = data.get("ticket_alone") or {}
    phrasings.ticket_alone = _compile(alone.get("patterns"), f"{where} ticket_alone")
    phrasings.ticket_choices = {role: _words(alone.get(role, []), f"{where} ticket_alone.{role}")
                                for role in ("staff", "cadre")}
    _commands_only([w for v in phrasings.ticket_choices.values() for w in v], command_words,
                   f"{where} ticket_alone")
    phrasings.topics = {str(name): _compile(p, f"{where} topics.{name}")
                        for name, p in (data.get("topics") or {}).items()}
    phrasings.inquiry = _compile(problem.get("inquiry"), f"{where} problem.inquiry")
    phrasings.not_inquiry = _words(problem.get("not_inquiry", []), f"{where} problem.not_inquiry")
    phrasings.emoji = frozenset(_words(ignore.get("emoji", []), f"{where} ignore.emoji"))
    phrasings.now = _words(emergency.get("now", []), f"{where} emergency.now")
    phrasings.one_go = {group: _words(words, f"{where} binding_in_one_go.{group}")
                        for group, words in (data.get("binding_in_one_go") or {}).items()}
    phrasings.surnames = frozenset("".join(phrasings.one_go.get("surnames", ())))
    phrasings.one_go_around = tuple(sorted(
        {*phrasings.one_go.get("around", ()), *phrasings.one_go.get("name_said", ())},
        key=len, reverse=True))
    phrasings.not_now_unless_now = frozenset(_words(emergency.get("not_now_unless_now", []),
                                                    f"{where} emergency.not_now_unless_now"))
    if not phrasings.not_now_unless_now <= set(phrasings.not_now):
        raise SettingsError(f"{where}: emergency.not_now_unless_now: not in not_now: "
                            f"{sorted(phrasings.not_now_unless_now - set(phrasings.not_now))}")
    phrasings.report_openings = _compile(problem.get("openings"), f"{where} problem.openings")
    phrasings.report_told_min = int(problem.get("told_min", 30))
    phrasings.report_another = _compile(problem.get("another"), f"{where} problem.another")
    phrasings.report_another_unless = _words(problem.get("another_unless", []),
                                             f"{where} problem.another_unless")
    phrasings.yields_to_problem = frozenset(_words(problem.get("yields", []),
                                                   f"{where} problem.yields"))
    _commands_only(phrasings.yields_to_problem, command_words, f"{where} problem.yields")
    return _with_examples(phrasings, data.get("nearest"), where)


def _commands_only(words, command_words, where: str) -> None:
    """A mistake in the file names a command that does not exist: stop with a clear message
    (not checked when the command words are not known, as in unit tests)."""
    unknown = sorted(set(words) - set(command_words)) if command_words is not None else []
    if unknown:
        raise SettingsError(f"{where}: not commands: {unknown}")


def _with_examples(phrasings: Phrasings, config: dict | None, where: str) -> Phrasings:
    """Learn from the labelled examples the phrasings file names (outside a dialog only:
    inside one the words answer its question)."""
    if not config:
        return phrasings
    path = ROOT / str(config.get("examples", ""))
    try:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        examples = [(phrasings.plain(line["said"]), str(line["expect"])) for line in lines
                    if line.get("context") == "idle"]
        phrasings.limits = tuple(float(config[k]) for k in ("sure", "near", "close"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"{where} nearest: cannot use the examples: {exc}") from exc
    phrasings.nearest = Nearest([(plain, label) for plain, label in examples if plain])
    return phrasings
