"""Plays the utterance corpora through the real signed webhook and scores what happened.

Used by scripts/bench_understanding.py (prints figures) and tests/test_understanding.py
(holds the targets). Each message's outcome is what the bot recorded on its inbound row
(`understood`: the command it ran, `kind`, `thread`, `yes`, `category:住房`, …).

Two sets:
- config/utterances.jsonl: one utterance a line, each from a fresh user of the given
  role with the given dialog context set up first (`report.urgency`, `thread`, …);
- tests/corpus/trial_labels.jsonl: the 189 messages of the trial
  (../shared/corpus/trial-2026-11-30.jsonl), each labelled with the context a well-made bot
  would have had open and the outcome a person would expect; played the same way.
"""
from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fakeredis  # noqa: E402
from sqlalchemy import select  # noqa: E402

import models  # noqa: E402
from bot import create_app  # noqa: E402
from models import Binding, Cadre, InboundMessage, Staff  # noqa: E402
from models.groups import BroadcastGroup, GroupMember  # noqa: E402
from models.people import StaffInvite  # noqa: E402
from scripts import demo_data  # noqa: E402
from tests.wx import WeChat  # noqa: E402

CORPUS = ROOT / "config" / "utterances.jsonl"
TRIAL_LABELS = ROOT / "tests" / "corpus" / "trial_labels.jsonl"
# Sets written later by someone who had not seen the phrasings, to measure how the matcher
# generalises: holdout was used to improve it afterwards; holdout2 was only measured; holdout3
# and holdout4 were measured blind once, then tuned on; holdout5 is the blind one now.
# dev6a/dev6b, dev7a/dev7b: 1,220 more lines written blind by four more writers, to be tuned
# on (their first figures are in the commits that added them); dev8a/dev8b, 600 more by two
# more writers (first figures 84.0 % and 78.7 % understood), tuned on; holdout6, by a third
# writer of that round, blind like holdout5 (83.5 % before the round's tuning, 84.5 % after);
# dev9a/dev9b, 600 by two more (first figures 85.3 % and 73.7 %: answers at every question,
# coming back to earlier things), tuned on; dev10a (staff in shorthand, English and misheard
# command words) and dev10b (family, strangers, cadres rambling by voice), 500 by two more
# (first figures 67.2 % and 74.8 %), tuned on; dev11a (cadres and family by voice, the point
# in the middle) and dev11b (answers at every question, staff in chat), 500 by two more
# (first figures 90.0 % and 91.2 %), tuned on; dev12a (an ordinary winter week) and dev12b
# (people not sure what the account can do), 500 by two more (first figures 87.2 % and
# 73.6 %), tuned on; dev13a (voice recognition slips, dialects, old formal phrasing) and
# dev13b (a family over a month: a daughter far away, her father, a carer, a grandson), 500
# by two more (first figures 88.4 % and 85.2 %), tuned on; dev14a (a staff member's working
# day in chat, and the old people answering them) and dev14b (the first weeks: strangers
# binding, QR codes, emergencies that are and are not), 500 by two more (first figures
# 76.8 % and 76.8 %), tuned on; dev15a (answers to the season's pushes: visit times, away
# for the winter, a class missed) and dev15b (changing one's mind and asking someone first,
# inside dialogs), 500 by two more (first figures 90.4 % and 78.8 %), tuned on; dev16a
# (money, health and policy: questions for a person, problems, thanks) and dev16b (a
# branch's notices: broadcasting, answering them, asking what they say), 500 by two more
# (first figures 86.8 % and 85.2 %), tuned on; dev17a (impatience, anger, complaints, and
# calming down) and dev17b (one phone, several people: couples, carers, a grandson), 500 by
# two more (first figures 88.8 % and 89.6 %), tuned on; dev18a (very short messages: one
# word, emoji, a number where it does not fit) and dev18b (long voice messages: hesitation,
# self-correction, two things at once), 500 by two more (first figures 88.0 % and 79.6 %),
# tuned on; dev19a (people not yet bound, in their first days) and dev19b (staff on a busy
# morning, and the people answering them), 500 by two more (first figures 82.8 % and
# 83.2 %), tuned on; dev20a (family members acting for a parent) and dev20b (replies to
# whoever wrote last: a staff reply, the rating question, 人工), 500 by two more (first
# figures 90.0 % and 86.8 %), tuned on; dev21a (December: heating, ice, colds, the term's
# end, year-end visits, small talk about the cold) and dev21b (what the account was not made
# for: rules, rumours, scams, salesmen, memories, remarks that only look like problems), 500
# by two more (first figures 88.0 % and 72.8 %), tuned on; dev22a (people not yet bound and
# their first five messages: name and digits in every shape, carers, QR codes, doubts) and
# dev22b (staff in the chat window: orders in every word order, numbers that are no ticket),
# 500 by two more (first figures 72.4 % and 89.6 %), tuned on; dev23a (an ordinary week,
# everyone at once: a cross-section of roles, commands and contexts) and dev23b (answering
# the bot's questions at every step), 500 by two more (first figures 93.6 % and 75.6 %),
# tuned on; dev24a (misunderstandings the bot must not make: command words in chit-chat,
# problems long solved or someone else's, numbers that are no choice) and dev24b (voice as
# recognition writes it, in dialect), 500 by two more (first figures 75.6 % and 90.4 %),
# tuned on; dev25a (two things at once, corrections and taking back) and dev25b (the notices
# and the branch group), 500 by two more (first figures 82.8 % and 82.8 %), tuned on.
SCRATCH = Path("/dev/shm")
SETS = {"corpus": CORPUS, "trial": TRIAL_LABELS,
        "holdout": ROOT / "tests" / "corpus" / "holdout.jsonl",
        "holdout2": ROOT / "tests" / "corpus" / "holdout2.jsonl",
        "holdout3": ROOT / "tests" / "corpus" / "holdout3.jsonl",
        "holdout4": ROOT / "tests" / "corpus" / "holdout4.jsonl",
        "holdout5": ROOT / "tests" / "corpus" / "holdout5.jsonl",
        "holdout6": ROOT / "tests" / "corpus" / "holdout6.jsonl",
        "dev6a": ROOT / "tests" / "corpus" / "dev6a.jsonl",
        "dev6b": ROOT / "tests" / "corpus" / "dev6b.jsonl",
        "dev7a": ROOT / "tests" / "corpus" / "dev7a.jsonl",
        "dev7b": ROOT / "tests" / "corpus" / "dev7b.jsonl",
        "dev8a": ROOT / "tests" / "corpus" / "dev8a.jsonl",
        "dev8b": ROOT / "tests" / "corpus" / "dev8b.jsonl",
        "dev9a": ROOT / "tests" / "corpus" / "dev9a.jsonl",
        "dev9b": ROOT / "tests" / "corpus" / "dev9b.jsonl",
        "dev10a": ROOT / "tests" / "corpus" / "dev10a.jsonl",
        "dev10b": ROOT / "tests" / "corpus" / "dev10b.jsonl",
        "dev11a": ROOT / "tests" / "corpus" / "dev11a.jsonl",
        "dev11b": ROOT / "tests" / "corpus" / "dev11b.jsonl",
        "dev12a": ROOT / "tests" / "corpus" / "dev12a.jsonl",
        "dev12b": ROOT / "tests" / "corpus" / "dev12b.jsonl",
        "dev13a": ROOT / "tests" / "corpus" / "dev13a.jsonl",
        "dev13b": ROOT / "tests" / "corpus" / "dev13b.jsonl",
        "dev14a": ROOT / "tests" / "corpus" / "dev14a.jsonl",
        "dev14b": ROOT / "tests" / "corpus" / "dev14b.jsonl",
        "dev15a": ROOT / "tests" / "corpus" / "dev15a.jsonl",
        "dev15b": ROOT / "tests" / "corpus" / "dev15b.jsonl",
        "dev16a": ROOT / "tests" / "corpus" / "dev16a.jsonl",
        "dev16b": ROOT / "tests" / "corpus" / "dev16b.jsonl",
        "dev17a": ROOT / "tests" / "corpus" / "dev17a.jsonl",
        "dev17b": ROOT / "tests" / "corpus" / "dev17b.jsonl",
        "dev18a": ROOT / "tests" / "corpus" / "dev18a.jsonl",
        "dev18b": ROOT / "tests" / "corpus" / "dev18b.jsonl",
        "dev19a": ROOT / "tests" / "corpus" / "dev19a.jsonl",
        "dev19b": ROOT / "tests" / "corpus" / "dev19b.jsonl",
        "dev20a": ROOT / "tests" / "corpus" / "dev20a.jsonl",
        "dev20b": ROOT / "tests" / "corpus" / "dev20b.jsonl",
        "dev21a": ROOT / "tests" / "corpus" / "dev21a.jsonl",
        "dev21b": ROOT / "tests" / "corpus" / "dev21b.jsonl",
        "dev22a": ROOT / "tests" / "corpus" / "dev22a.jsonl",
        "dev22b": ROOT / "tests" / "corpus" / "dev22b.jsonl",
        "dev23a": ROOT / "tests" / "corpus" / "dev23a.jsonl",
        "dev23b": ROOT / "tests" / "corpus" / "dev23b.jsonl",
        "dev24a": ROOT / "tests" / "corpus" / "dev24a.jsonl",
        "dev24b": ROOT / "tests" / "corpus" / "dev24b.jsonl",
        "dev25a": ROOT / "tests" / "corpus" / "dev25a.jsonl",
        "dev25b": ROOT / "tests" / "corpus" / "dev25b.jsonl"}
# The notices the notice list shows (oldest first; the list shows the newest first).
NOTICES = ("本周五上午九点在活动中心开支部党员大会，请准时参加",
           "重阳节走访慰问安排：下旬工作人员将上门看望各位老同志，请保持电话畅通",
           "元旦联欢会12月30日下午两点在老干部活动中心举行，欢迎老同志们参加")
# Outcomes that leave the user where they were, with the question or the menu in front of them
# (`explain`: a question back at the binding's question answered, and the question again).
PASSIVE = {"not_understood", "reask", "clarify", "explain"}
# What counts as the expected outcome besides the label itself.
ALSO = {"report_prefilled": {"problem"}, "quit": {"quit", "ask_quit", "no"},
        "no": {"no", "quit", "ask_quit"},
        # At a free-text step `算了` is asked about (PRODUCT §5): asking whether to give up
        # is that question.
        "ask_command": {"ask_command", "ask_quit"},
        "菜单": {"菜单", "subscribe"}, "工作人员": {"工作人员"},
        # Words after a staff reply on a ticket become a note on it: that is 补充.
        "补充": {"补充", "thread"},
        # A staff member's remark with no number in it is answered as chat, with the
        # commands listed (router.understand, `aside`): kind words, not a dead end.
        "kind": {"aside"},
        # A question back at a step (`紧急是啥标准？`, `啥叫解绑？`, `能发图片不？`) labelled for a
        # clarifying answer is answered with what the step asks for, and the question again
        # (Router.explain): `explain`.
        "clarify": {"clarify", "explain"},
        # Away from one class (`下周四的课去不了，跟老师说一声`): labelled for a person to
        # tell the teacher; the class feature now records the leave itself (`请假`: the seat
        # kept, the roster shows it), which is what was asked.
        "人工": {"人工", "请假"}}
# Per role: someone not yet bound who tells a problem is put through to a person with the
# words (handlers/issues/chat.py `problem`), not into a report they may not make yet.
# A cadre or family member asking for one problem's details gets them from `我的问题 N`
# (详情 is the staff's command).
# Per context: at the name question of binding oneself, a name said with "it is for my
# father" is taken as the name and turns the binding into family binding: both labels fit.
# After a staff member wrote (a reply, or the resolved ticket's rating question), thanks are
# passed on to them and answered kindly at once (PRODUCT §5, issue 11.3): that is a kind word.
# After `人工`, what the user says next joins the request (PRODUCT §5): the words a writer
# labelled as the content of the request are that thread; words that take the request back
# (`不用了，我自己弄好了`) reach the staff the same way and also close it: both labels fit.
# At the binding's name or digits question, `算了` or `人工` cannot be taken for the answer
# (no wrong try is counted): leaving, or putting them through to a person at once, is what
# asking "do you mean…?" would lead to.
ALSO_AT = {"bind.name": {"content": {"家属绑定"}, "家属绑定": {"content"},
                         "ask_command": {"quit", "人工"}},
           "bind.phone": {"ask_command": {"quit", "人工"}},
           "thread": {"kind": {"thread"}}, "rating": {"kind": {"thread"}},
           "after_human": {"kind": {"thread"}, "content": {"thread"}, "thread": {"quit"}}}
# Per role: reopening is the staff's (`重开 N`); a reporter who says the fix did not work has
# their words put on the ticket for the staff on it to decide (补充, or the open thread).
ALSO_AS = {"stranger": {"report_prefilled": {"人工"}, "problem": {"人工"}},
           "cadre": {"详情": {"我的问题"}, "重开": {"补充", "thread"}},
           "family": {"详情": {"我的问题"}, "重开": {"补充", "thread"}}}


@dataclass
class Score:
    """Counts per set and role: understood, misread, not understood, dead ends."""

    rows: list = field(default_factory=list)

    canonical: dict = field(default_factory=dict)

    def add(self, who: str, context: str, said: str, expect: str, got: str | None) -> None:
        """Judge one utterance by its label (a command by any of its words)."""
        expect, got = self.canonical.get(expect, expect), self.canonical.get(got, got)
        ok = got == expect or got in ALSO.get(expect, ()) or \
            got in ALSO_AS.get(who.rstrip("0123456789"), {}).get(expect, ()) or \
            got in ALSO_AT.get(context, {}).get(expect, ())
        if expect == "not_understood":
            ok = got in PASSIVE | {"kind", "aside"}
        misread = not ok and got not in PASSIVE and got is not None
        dead = not ok and (got is None or got == "kind")
        self.rows.append({"who": who, "context": context, "said": said, "expect": expect,
                          "got": got, "ok": ok, "misread": misread, "dead": dead})

    def summary(self) -> dict:
        """Percentages overall and per role."""
        def pct(rows, key):
            return 100.0 * sum(r[key] for r in rows) / len(rows) if rows else 0.0
        by_role = defaultdict(list)
        for r in self.rows:
            by_role[r["who"].rstrip("0123456789")].append(r)
        out = {"all": self._line(self.rows, pct)}
        for role, rows in sorted(by_role.items()):
            out[role] = self._line(rows, pct)
        return out

    @staticmethod
    def _line(rows, pct) -> dict:
        return {"n": len(rows), "understood": pct(rows, "ok"), "misread": pct(rows, "misread"),
                "dead_ends": sum(r["dead"] for r in rows)}

    def failures(self) -> list[dict]:
        """The utterances not understood, for reading."""
        return [r for r in self.rows if not r["ok"]]


class World:
    """An app on a scratch SQLite database with the demo people, and helpers to set scenes."""

    def __init__(self, database_url: str | None = None):
        # Scratch data in memory when the machine has a tmpfs: every message commits, and
        # the corpus measures understanding, not the disk's fsync.
        self.tmp = tempfile.TemporaryDirectory(dir=SCRATCH if SCRATCH.is_dir() else None)
        url = database_url or f"sqlite:///{self.tmp.name}/corpus.db"
        engine_app = create_app({"database_url": url, "env": "test", "quiet_hours": "off",
                                 "wechat_api_base": "http://127.0.0.1:9/",
                                 "reply_budget_seconds": 30.0},
                                redis_client=fakeredis.FakeRedis(server=fakeredis.FakeServer()))
        self.app = engine_app
        self.yl = engine_app.extensions["yinling"]
        models.Base.metadata.create_all(self.yl.db.engine)
        with self.yl.db.session() as s:
            demo_data.load(s)
            s.add(StaffInvite(code="9UQTRQ6H", name="孙丽", role="staff",
                              expires_at=models.utcnow() + demo_data.timedelta(days=7)))
            self.group_id = s.scalar(select(BroadcastGroup.id))
        self.wx = WeChat(engine_app)
        self.n = 0
        router = self.yl.router
        self.canonical = {w: router.rule_for(w).words[0] for w in router.command_words()}

    def close(self) -> None:
        """Stop background delivery and drop the scratch database."""
        self.yl.close()
        self.tmp.cleanup()

    # ---- people ----------------------------------------------------------------------------
    def person(self, role: str) -> str:
        """A fresh openid playing `role` (its own cadre, so nothing leaks between lines)."""
        self.n += 1
        openid = f"corpus-{role}-{uuid.uuid4().hex[:10]}"
        with self.yl.db.session() as s:
            if role == "staff":
                s.add(Staff(name=f"值班{self.n}", openid=openid, role="staff", on_duty=True))
                return openid
            if role == "stranger":
                return openid
            cadre = Cadre(name=f"老同志{self.n}", phone=f"139{self.n:08d}")
            s.add(cadre)
            s.flush()
            if role == "family":
                s.add(Binding(openid=f"{openid}-self", cadre_id=cadre.id, relation="self"))
            s.add(Binding(openid=openid, cadre_id=cadre.id,
                          relation="family" if role == "family" else "self"))
            s.add(GroupMember(group_id=self.group_id, cadre_id=cadre.id,
                              is_admin=role == "cadre"))
        return openid

    def send(self, openid: str, said: str) -> tuple[str | None, str | None]:
        """Send what the corpus line says the way WeChat would: (reply, outcome)."""
        if said == "[关注]":
            reply = self.wx.event(openid, "subscribe")
        elif said.startswith("[点击]"):
            reply = self.wx.click(openid, said[len("[点击]"):])
        elif said.startswith("[语音]"):
            reply = self.wx.voice(openid, said[len("[语音]"):])
        else:
            reply = self.wx.text(openid, said)
        with self.yl.db.session() as s:
            row = s.scalar(select(InboundMessage).where(InboundMessage.openid == openid)
                           .order_by(InboundMessage.id.desc()))
            return reply, row.understood if row else None

    def _notice(self) -> None:
        """Three broadcasts in the demo group, so that `通知` lists what a real list holds
        (writers speak of `第二个`, `重阳节那个`)."""
        from handlers.broadcasts import service

        with self.yl.db.session() as s:
            if not s.scalar(select(models.broadcasts.Broadcast.id)):
                for content in NOTICES:
                    service.send(s, self.yl.outbox, "demo-cadre-1", self.group_id, content,
                                 "text", models.utcnow())

    def invite(self) -> None:
        """The trial's invite code, unused again (a line that redeems it may run twice)."""
        with self.yl.db.session() as s:
            invite = s.scalar(select(StaffInvite).where(StaffInvite.code == "9UQTRQ6H"))
            invite.used_at = invite.used_by = None

    def scene(self, openid: str, context: str) -> None:
        """Put the user in front of the context's question."""
        staff = "demo-staff-1"
        steps = {
            "idle": [], "report.category": ["反映问题"], "report.description": ["反映问题", "4"],
            "report.urgency": ["反映问题", "4", "家里暖气片不热"],
            "report.confirm": ["反映问题", "4", "家里暖气片不热", "1"],
            "broadcast.content": ["群发"], "broadcast.confirm": ["群发", "明天上午九点开支部会"],
            "unbind.confirm": ["解绑"], "after_human": ["人工"],
            "bind.name": ["绑定"], "bind.phone": ["绑定", "王建国"],
            "supplement.content": ["反映问题", "4", "家里暖气片不热", "1", "1", "补充"],
            "course.list": ["课程"], "notice.list": ["通知"],
        }
        if context == "notice.list":
            self._notice()
        if context in steps:
            for said in steps[context]:
                self.send(openid, said)
            return
        if context == "thread" and openid.startswith("corpus-stranger-"):
            # Someone not bound reports nothing: a staff member answered their `人工`.
            from models.people import HelpRequest

            self.send(openid, "人工")
            with self.yl.db.session() as s:
                request = s.scalar(select(HelpRequest.id).where(HelpRequest.openid == openid))
            self.send(staff, f"答复 {request} 您好，请问您登记的是哪个手机号？")
            return
        reply, _ = self.send(openid, "反映问题")
        for said in ("4", "家里暖气片不热", "1", "1"):
            reply, _ = self.send(openid, said)
        number = int(reply.split("问题编号是")[1].split("号")[0].strip())
        self.send(staff, f"接单 {number}")
        if context == "rating":
            self.send(staff, f"办结 {number} 已联系供热公司修好")
        elif context == "thread":
            self.send(staff, f"回复 {number} 我们已经联系供热公司，下午派人上门")
        else:
            raise ValueError(f"unknown context {context!r}")


def load_lines(path: Path) -> list[dict]:
    """A JSON-lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def score_lines(world: World, lines: list[dict]) -> Score:
    """Each line from a fresh user of its role, in front of its labelled context: what a
    well-made bot would have open at that moment (so one miss does not shift the rest)."""
    score = Score(canonical=world.canonical)
    for line in lines:
        role = line.get("as", line["who"]).rstrip("0123456789")  # `as`: bound by then
        openid = world.person(role if role != "staff" or "工作人员" not in line["said"]
                              else "stranger")
        world.invite()
        world.scene(openid, line["context"])
        _, got = world.send(openid, line["said"])
        score.add(line["who"], line["context"], line["said"], line["expect"], got)
    return score


def run(sets=tuple(SETS)) -> dict[str, Score]:
    """Score the named sets, each in a world of its own."""
    results = {}
    for name in sets:
        world = World()
        try:
            results[name] = score_lines(world, load_lines(SETS[name]))
        finally:
            world.close()
    return results


def counts(score: Score) -> Counter:
    """How often each (expected, got) pair went wrong."""
    return Counter((r["expect"], r["got"]) for r in score.failures())
