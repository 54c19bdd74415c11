"""Handler registration (Handlers) and dispatch (Router), with the role check in one place."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from bot import roles as R
from bot.errors import Refusal
from bot.text import normalise

logger = logging.getLogger(__name__)

MENU_WORDS = {"菜单", "帮助", "你好", "您好", "侬好", "雷猴", "你们好", "menu", "help",
              "哈喽", "嗨", "hello", "hi"}  # greetings that say what 你好 says
# Everyday words count as a command at a free-text step only when they are most of it,
# and outside one when they are not a small part of a problem told in many words.
STRONG_COVERAGE = 0.5
WEAK_COVERAGE = 0.3
STRONG_ARGS = 6
SEPARATED = set(" 　,，:：、")  # `人工 …`: the command word, then its words
PHRASED_MARGIN = 3  # characters more than the command word for everyday words to win
CANCEL_WORDS = {"取消", "退出", "0"}
HUMAN = "人工"   # a wish for a person is heard at any question
ZERO_SAID = {"零", "〇", "洞"}  # `0` said or typed in words: leaves a dialog (a menu's `0 取消`)
MENU_LABELS = Path(__file__).resolve().parent.parent / "templates" / "core" / "menu_labels.yaml"
# What a dialog step returns when the message is not an answer to its question: the router
# leaves the dialog and handles the message afresh (a command, a menu number, kind words…).
NEW_MESSAGE = object()


# Words that join a second wish to the first in one message.
_ALSO = re.compile(r"(?:^|[\s,，.。!！?？;；、])(?:还有|另外)|顺便|顺带|既.{1,12}又|都想|都要")


@dataclass
class Rule:
    """One command: its words, custom-menu key, required role and menu entry."""

    handler: Callable
    words: tuple[str, ...] = ()
    click: str | None = None
    role: str | None = None
    menu: str | None = None
    order: int = 100
    hide_for: frozenset = frozenset()
    show_for: str | None = None  # a role the menu entry needs beyond `role` (e.g. on duty)
    refused: Callable | None = None  # its feature's `refused(ctx, refusal)`, set by register
    bound_only: bool = False  # about one's own binding: no guess takes someone unbound there
    takes: re.Pattern | None = None  # the arguments its word may be followed by, when limited
    feature: str = ""   # the feature that registered it (set by Router.register)


@dataclass
class Handlers:
    """A feature's handlers; registered on the Router by create_app."""

    name: str
    rules: list[Rule] = field(default_factory=list)
    steps: dict[str, Callable] = field(default_factory=dict)
    step_roles: dict[str, str] = field(default_factory=dict)
    events: dict[str, Callable] = field(default_factory=dict)
    messages: dict[str, Callable] = field(default_factory=dict)
    resolvers: list[Callable] = field(default_factory=list)
    meanings: dict[str, Callable] = field(default_factory=dict)
    refused: Callable | None = None

    def command(self, *words: str, click: str | None = None, role: str | None = None,
                menu: bool = False, order: int = 100, hide_for=(),
                show_for: str | None = None, bound_only: bool = False,
                takes: str | None = None):
        """Register `handler(ctx, args) -> str` for command words (prefix match) and a click key;
        `menu=True` puts it in the numbered menu, labelled in templates/core/menu_labels.yaml."""
        def deco(fn):
            self.rules.append(Rule(fn, tuple(words), click, role, menu, order,
                                   frozenset(hide_for), show_for, bound_only=bound_only,
                                   takes=re.compile(takes) if takes else None))
            return fn
        return deco

    def step(self, *states: str, role: str | None = None):
        """Register `handler(ctx) -> str` for dialog states, each needing `role` as the
        command that opened it did (checked by the router before every step)."""
        def deco(fn):
            for state in states:
                self.steps[state] = fn
                if role is not None:
                    self.step_roles[state] = role
            return fn
        return deco

    def dialog(self, states: dict[str, Callable], *, role: str | None = None,
               wrap: Callable | None = None) -> None:
        """Declare a dialog in one table {STATE: step}: each step answers its state, needs
        `role` as the command that opened it did, and is wrapped by `wrap` (what every step
        of this dialog does first, e.g. keep a photo sent mid-dialog). A step may return
        NEW_MESSAGE (not an answer: the router handles the message afresh) or raise the
        feature's Refusal (the router ends the dialog and answers it)."""
        for state, fn in states.items():
            self.step(state, role=role)(wrap(fn) if wrap else fn)

    def event(self, *names: str):
        """Register `handler(ctx) -> str|None` for event types (lower-case)."""
        def deco(fn):
            for name in names:
                self.events[name] = fn
            return fn
        return deco

    def message(self, *types: str):
        """Register `handler(ctx) -> str|None` for non-text message types outside dialogs."""
        def deco(fn):
            for t in types:
                self.messages[t] = fn
            return fn
        return deco

    def meaning(self, *names: str):
        """Register `handler(ctx) -> str|None` for a meaning found in free words
        (`emergency`, `thread`, `kind`, `problem`, `voice_unclear`, `late_answer`)."""
        def deco(fn):
            for name in names:
                self.meanings[name] = fn
            return fn
        return deco

    def refusal(self, fn):
        """Register `fn(ctx, refusal) -> str`: how this feature's commands answer a Refusal."""
        self.refused = fn
        return fn

    def roles(self, fn):
        """Register `fn(openid) -> {role: SQL condition}` that contributes roles."""
        self.resolvers.append(fn)
        return fn


class Router:
    """Routes a Ctx to the one handler that should answer it."""

    def __init__(self):
        self.rules: list[Rule] = []
        self.steps: dict[str, Callable] = {}
        self.step_roles: dict[str, str] = {}
        self.step_refusals: dict[str, Callable] = {}  # state -> its feature's refused()
        self.step_features: dict[str, str] = {}  # state -> the feature whose dialog it is
        self.events: dict[str, Callable] = {}
        self.messages: dict[str, Callable] = {}
        self.meanings: dict[str, Callable] = {}
        self.resolvers: list[Callable] = [R.base_roles]
        self._by_word: list[tuple[str, Rule]] = []
        self.phrasings = None  # bot.understand.Phrasings, loaded by create_app
        self.labels: dict | None = None  # templates/core/menu_labels.yaml, read on first use
        self._role_query: R.RoleQuery | None = None  # built on first use, after register()

    def register(self, handlers: Handlers) -> None:
        """Add a feature's handlers; a word or state registered twice is a programming error."""
        for rule in handlers.rules:
            rule.refused, rule.feature = handlers.refused, handlers.name
            if rule.menu is True:
                rule.menu = self._label(rule)
            for word in rule.words:
                if any(w == word for w, _ in self._by_word):
                    raise ValueError(f"command word {word!r} registered twice")
                self._by_word.append((word, rule))
        self.rules.extend(handlers.rules)
        for table, new in ((self.steps, handlers.steps), (self.events, handlers.events),
                           (self.messages, handlers.messages),
                           (self.meanings, handlers.meanings)):
            dup = set(table) & set(new)
            if dup:
                raise ValueError(f"{handlers.name}: registered twice: {sorted(dup)}")
            table.update(new)
        self.resolvers.extend(handlers.resolvers)
        self._role_query = None  # the resolvers changed: build the statement again
        self.step_roles.update(handlers.step_roles)
        self.step_features.update(dict.fromkeys(handlers.steps, handlers.name))
        if handlers.refused is not None:
            self.step_refusals.update(dict.fromkeys(handlers.steps, handlers.refused))
        # Longest word first, so 家属绑定 wins over 绑定 and 取消报名 over 取消.
        self._by_word.sort(key=lambda pair: -len(pair[0]))

    def _label(self, rule: Rule) -> str:
        """A menu entry's label (what users read lives in templates/)."""
        if self.labels is None:
            self.labels = yaml.safe_load(MENU_LABELS.read_text(encoding="utf-8")) or {}
        label = self.labels.get(rule.words[0] if rule.words else rule.click)
        if not label:
            raise ValueError(f"{MENU_LABELS}: no label for the menu entry {rule.words[:1]}")
        return str(label)

    def roles_of(self, session, openid: str) -> set[str]:
        """Every role the openid holds, from every resolver (one statement, built once)."""
        return self.role_query(session, openid)

    @property
    def role_query(self) -> R.RoleQuery:
        """The roles statement of every resolver registered (built at its first use)."""
        if self._role_query is None:
            self._role_query = R.RoleQuery(self.resolvers)
        return self._role_query

    # ---- matching ------------------------------------------------------------------------
    def match(self, text: str) -> tuple[Rule, str] | None:
        """The rule whose word starts the text, and the rest of the text as arguments (not
        when they are words the command cannot take: `工作人员给了我一个码…` is no invite code)."""
        for word, rule in self._by_word:
            if text == word or text.startswith(word):
                args = text[len(word):].strip()
                if rule.takes is None or rule.takes.fullmatch(args):
                    return rule, args
        return None

    def by_click(self, key: str) -> Rule | None:
        """The rule bound to a custom-menu CLICK key."""
        return next((r for r in self.rules if r.click == key), None)

    def menu_rules(self, user_roles: set[str]) -> list[Rule]:
        """Menu entries this user may use, in menu order."""
        shown = [r for r in self.rules if r.menu and R.has_role(user_roles, r.role)
                 and not (r.hide_for & user_roles) and R.has_role(user_roles, r.show_for)]
        return sorted(shown, key=lambda r: r.order)

    def menu_text(self, ctx, note: str | None = None) -> str:
        """Render the numbered menu for ctx's roles."""
        items = [r.menu for r in self.menu_rules(ctx.roles)]
        return ctx.reply("core/menu", items=items, note=note, roles=ctx.roles)

    def command_words(self) -> set[str]:
        """Every registered command word."""
        return {word for word, _ in self._by_word}

    def rule_for(self, word: str) -> Rule | None:
        """The rule registered for a command word."""
        return next((rule for w, rule in self._by_word if w == word), None)

    # ---- dispatch ------------------------------------------------------------------------
    def dispatch(self, ctx) -> str | None:
        """Answer one message by the one precedence rule (README, "How a message is
        understood"): an emergency; 菜单/取消; an open dialog's question (what is not its
        answer goes to `not_an_answer`); the pending rating question; then `understand`."""
        if ctx.msg_type == "event":
            return self._dispatch_event(ctx)
        in_dialog = ctx.state is not None and ctx.state.get("name") in self.steps
        if in_dialog and not R.has_role(ctx.roles, self.step_roles.get(ctx.state["name"])):
            return self._step_refused(ctx)
        if ctx.msg_type in ("text", "voice") and ctx.text and \
                self.phrasings.emergency_in(ctx.plain):
            advice = self.mean(ctx, "emergency")
            if not in_dialog:
                return advice
            # The words still answer the open question (a report's description, say).
            return f"{advice}\n\n{self._step(ctx)}"
        text = ctx.text
        asked = bool(text) and not text.strip("?？") and (   # `？` is the menu, unless said
            in_dialog or ctx.follower.open_thread(ctx.now) is None)   # to a person
        if text in MENU_WORDS or ctx.plain in MENU_WORDS or asked \
                or ctx.says_only("menu"):   # `回菜单` at any question, as `菜单`
            ctx.end()
            ctx.understood("菜单")
            return ctx.menu()
        if (text in CANCEL_WORDS or (in_dialog and text in ZERO_SAID)) and \
                (in_dialog or text != "0"):
            if not in_dialog:  # `取消` right after `人工`: the staff hear it, the thread ends
                withdrawn = self.mean(ctx, "thread", quiet=True)
                if withdrawn is not None:
                    return withdrawn
            ctx.end()
            ctx.understood("quit" if in_dialog else "取消")
            return ctx.reply("core/cancelled" if in_dialog else "core/nothing_to_cancel",
                             menu=ctx.menu())
        if in_dialog:  # the dialog's question gets the first go; then a rating in words
            topic = self.topic_of(ctx)   # `等一下，我问问我儿子`: the question waits for them
            if topic is not None:
                return self.on_topic(ctx, topic, ctx.state)
            if self.phrasings.asks_about_step(ctx.plain) and (   # `紧急是啥标准？`
                    self.phrasings.asks_back(ctx.raw_text or ctx.text) or "?" in ctx.text):
                explained = self.explain(ctx)
                if explained is not None:
                    return explained
            return self._step(ctx)
        rated = self.mean(ctx, "rating", quiet=True)
        if rated is not None:
            return rated
        if ctx.msg_type not in ("text", "voice"):
            handler = self.messages.get(ctx.msg_type)
            return handler(ctx) if handler else ctx.menu(ctx.reply("core/not_text"))
        if not text:
            if ctx.msg_type == "voice":
                return self.mean(ctx, "voice_unclear")
            ctx.understood("not_understood")
            return ctx.menu(ctx.reply("core/not_understood"))
        return self.understand(ctx)

    def understand(self, ctx, *, in_dialog: bool = False) -> str | None:
        """A message that answers no open question: a command in any words, a menu number,
        the thread a staff member opened, kind words, chit-chat, a problem told straight
        out — or the menu."""
        if R.CADRE in ctx.roles and not in_dialog:  # bound: who they are is known already
            rest = self.phrasings.after_introduction(ctx.raw_text or ctx.text)
            if rest is not None:   # `我是王建国的女儿，我爸家燃气灶打不着火了`
                ctx.reread(rest)
        elif not ctx.roles and not in_dialog:  # not bound: who they are stays with the words
            rest = self.phrasings.after_introduction(ctx.raw_text or ctx.text)
            told = self.phrasings.plain(rest) if rest is not None else ""
            if told and self.phrasings.problem_in(told) and \
                    not self.phrasings.telling_only(told, rest):
                return self.mean(ctx, "problem")   # to a person, who reads who is asking
        if not in_dialog:   # `谢谢你们上回来看我，对了，…给我报上`: the point follows the pause
            rest = self.phrasings.after_pause(ctx.raw_text or ctx.text)
            if rest is not None:
                ctx.reread(rest)
            changed = self.phrasings.changed_mind(ctx.raw_text or ctx.text)
            if changed is not None:   # `我想报名，噢不对，是退掉书法那个`: what follows counts
                before, rest = changed
                head = self.match(normalise(before))
                args = self.phrasings.args_only(rest)
                if head is not None and args is not None:   # `接单１２，不对，１３`: the command
                    rest = f"{head[0].words[0]} {args}"   # with the number corrected
                ctx.reread(rest)
            elif self._taken_back(ctx):   # `人工。哦不用了，我找到了`: nothing to do
                return self.mean(ctx, "kind", kind="withdrawn")
        told = None if in_dialog or "反映问题" not in self._allowed(ctx) else \
            self.phrasings.after_report_opening(   # in a thread, only `我又有个问题，…`
                ctx.raw_text or ctx.text, another=ctx.follower.open_thread(ctx.now) is not None)
        if told is not None:
            ctx.reread(told)   # `我要反映问题，嗯，就是我们社区那个食堂…`: the rest is the problem
            return self.mean(ctx, "problem")
        if not ctx.roles and not in_dialog and "绑定" in self._allowed(ctx) and \
                self.match(ctx.text) is None:   # `我是刘桂兰 幺零零四`: binding in one go
            said = self.phrasings.binding_in_one_go(ctx.raw_text or ctx.text)
            if said is not None:
                return self.run(ctx, self.rule_for("绑定"), said)
        found = self.command_in(ctx)
        if found is None and ctx.correct_slips():
            found = self.command_in(ctx)  # `当费咋交` is 党费 mistyped
        if isinstance(found, list) and not in_dialog and \
                ctx.follower.open_thread(ctx.now) is not None:
            found = None   # `暖气` right after `人工`: words for the person, not two readings
        if found is not None:
            return self.run_found(ctx, *found) if isinstance(found, tuple) else \
                self.mean(ctx, "clarify", options=found)
        if R.STAFF in ctx.roles:  # `回一下12号，供热公司已经派单了`: an order in free order
            order = self.phrasings.staff_sentence(ctx.raw_text or ctx.text, self._allowed(ctx))
            if order is not None:
                ctx.typed_args = order[1]
                return self.run(ctx, self.rule_for(order[0]), order[1])
        if not in_dialog:
            late = self.mean(ctx, "late_answer", quiet=True)
            if late is not None:
                return late
        number = ctx.number()
        if number is None and self.match(ctx.text):  # `回复1`: copying "请回复1"
            number = ctx.number(self.match(ctx.text)[1])
        items = self.menu_rules(ctx.roles)
        ticket = None if in_dialog else self.phrasings.ticket_said_alone(ctx.plain)
        if ticket is None and not in_dialog and number is not None and number > len(items):
            ticket = number   # `十七`: no menu item has that number, a ticket may
        if number is not None and 1 <= number <= len(items) and \
                (ticket is None or ctx.plain.isdigit()):
            return self.run(ctx, items[number - 1], "")
        if ticket is not None:   # `12号`: what to do with it is asked
            choices = self._ticket_choices(ctx)
            if choices:
                return self.mean(ctx, "clarify", options=choices, args=str(ticket),
                                 number=ticket)
        if not in_dialog:
            answered = self.mean(ctx, "thread", quiet=True)
            if answered is not None:
                return answered
        topic = None if in_dialog else self.topic_of(ctx)
        if topic is not None:
            return self.on_topic(ctx, topic, None)
        kind = ctx.kind
        if kind is not None:
            return self.mean(ctx, "kind", kind=kind)
        staff_only = R.STAFF in ctx.roles and R.CADRE not in ctx.roles
        if not staff_only and self.phrasings.problem_in(ctx.plain):  # staff: about a ticket
            if self.phrasings.telling_only(ctx.plain, ctx.raw_text):  # thanks for help: thanked
                return self.mean(ctx, "kind", kind="thanks" if self.phrasings.thanks_in(
                    ctx.plain) else "chat")
            if self.phrasings.inquiry_in(ctx.plain) and self.may_ask_person(ctx):
                return self.to_person(ctx)   # `护理补贴怎么申请`: a question for a person
            return self.mean(ctx, "problem")
        if self.phrasings.chat_score(ctx.plain) or (  # staff remarks: `aside`, below
                R.STAFF not in ctx.roles and self.phrasings.just_talking_in(ctx.plain)):
            return self.mean(ctx, "kind", kind="chat")
        if not in_dialog and not staff_only and self.may_ask_person(ctx) and \
                self.phrasings.inquiry_in(ctx.plain):   # `交一千块办长寿卡，这靠谱吗`
            return self.to_person(ctx)
        if not in_dialog and not ctx.roles and "绑定" in self._allowed(ctx):
            said = self.phrasings.half_binding(ctx.raw_text or ctx.text)
            if said is not None:   # `王建国`, `1001` from someone not bound: which binding
                return self.mean(ctx, "clarify", options=["绑定", "家属绑定"])
        if not in_dialog:  # last: what the labelled examples say no pattern knew
            guessed = () if self.phrasings.telling_only(ctx.plain, ctx.raw_text) else \
                self.phrasings.commands_guessed(ctx.plain, self._usable(ctx))
            if len(guessed) == 1:
                return self.run(ctx, self.rule_for(guessed[0]), "")
            if guessed:
                return self.mean(ctx, "clarify", options=list(guessed))
            if self.phrasings.statement(ctx.plain, ctx.raw_text) and \
                    (R.CADRE in ctx.roles or R.STAFF not in ctx.roles):  # staff give orders
                return self.mean(ctx, "kind", kind="told")
            if R.STAFF in ctx.roles and self.phrasings.aside(ctx.plain, ctx.raw_text or ctx.text):
                return self.mean(ctx, "kind", kind="aside")  # said to colleagues: no order
        ctx.understood("not_understood")
        return ctx.menu(ctx.reply("core/not_understood"))

    def _taken_back(self, ctx) -> bool:
        """A command said alone first and taken back in a clause after it (`解绑，哎呀按错了，
        不解不解`; `下班了，不接单了` is no taking back: its first clause says more)."""
        raw = ctx.raw_text or ctx.text
        if not self.phrasings.taken_back(raw):
            return False
        first = self.phrasings.first_clause(raw) or ""
        head = self.match(first)
        if head is not None:   # `接单12，哎呀按错了`: the command with its number, taken back
            return head[1] == "" or self.phrasings.args_only(head[1]) is not None
        matches = self.phrasings.commands_in(first, self._allowed(ctx))
        return bool(matches) and matches[0].score == len(first)

    def command_in(self, ctx, *, strong_only: bool = False):
        """(rule, args) for the command this message gives; a list of candidate words when
        it could mean two (or is one vague word); None when none fits.

        A command's own word wins. Everyday words are weaker: they yield to a problem told
        in many more words than the command's match covers, and (for the commands an open
        thread answers, `thread_takes`) to the staff member who wrote last; `strong_only`
        keeps only matches that cover most of the message (a free-text step)."""
        found = self.match(ctx.text) or self.match(ctx.plain)
        if found and self._menu_choice_in_disguise(ctx, *found):
            return None
        allowed = self._allowed(ctx)
        matches = self._phrased(ctx, allowed)
        if found and not self._phrased_better(ctx, found, matches, allowed):
            if strong_only and len(self.phrasings.plain(found[1])) > STRONG_ARGS:
                return None
            return found
        vague = self.phrasings.vague.get(ctx.plain) or \
            self.phrasings.vague.get(self.phrasings.plain(ctx.text, openers=False))
        if vague and not found:
            return list(vague)
        if not matches:
            return None
        coverage = matches[0].score / len(ctx.plain)
        if strong_only and coverage < STRONG_COVERAGE:
            return None
        if coverage < WEAK_COVERAGE and not matches[0].strong and \
                self.phrasings.problem_in(ctx.plain):
            if self._wish_after_problem(ctx, matches[0]):  # `暖气不热，还有党费交了没`
                return ["反映问题", matches[0].word]
            return None  # a problem told in many words, one of which sounds like a command
        if matches[0].word in self.phrasings.yields_to_problem and \
                self.phrasings.problem_in(ctx.plain.replace(matches[0].span, "", 1)):
            return None  # `帮我爸登记个问题，他家楼道漏水`: the problem is told as well
        if self.phrasings.chat_score(ctx.plain) > matches[0].score:
            return None  # `今天是几号来着` is chit-chat, not `几号来` (a visit)
        if matches[0].word in self.phrasings.thread_takes and \
                ctx.follower.open_thread(ctx.now) is not None and \
                not any(p.search(ctx.plain) for p in self.phrasings.thread_leaves):
            return None   # `什么时候能修好` is for whoever wrote; `我反映的那几个事…` is not
        tied = [m for m in matches if m.score == matches[0].score]
        order = R.STAFF in ctx.roles and matches[0].args[:1].isdigit()  # `15号修好了，能关了`
        if not matches[0].strong and not order and \
                self.phrasings.telling_only(ctx.plain, ctx.raw_text or ctx.text):
            return None  # a memory, a grandchild's doings: chat, whatever words it uses
        if len(tied) > 1:
            return [m.word for m in tied[:3]]  # asked about in one question, never guessed
        second = self._second_wish(ctx, matches)
        if second is not None:   # `党费交了没有？顺便把书法班也给我报上`: which first?
            return [matches[0].word, second.word]
        if self._wish_after_problem(ctx, matches[0]):  # `暖气不热，还有党费交了没`
            return ["反映问题", matches[0].word]
        return self.rule_for(matches[0].word), matches[0].args

    def _wish_after_problem(self, ctx, match) -> bool:
        """A problem told, then another wish joined to it (`还有`, `另外`, `顺便`): the
        command's words stand after the joiner, and the words before it tell the problem."""
        raw = ctx.raw_text or ctx.text
        joined = _ALSO.search(raw)
        if joined is None or "反映问题" not in self._allowed(ctx):
            return False
        before, after = (self.phrasings.plain(part) for part in
                         (raw[:joined.start()], raw[joined.end():]))
        return bool(match.span) and match.span in after and match.span not in before and \
            self.phrasings.problem_in(before)

    def _second_wish(self, ctx, matches):
        """Another command wished for in the same message, in words of its own and joined
        to the first (`顺便`, `还有`, `既…又…`, `…都想`), or None."""
        if not _ALSO.search(ctx.raw_text or ctx.text):   # `还有空位不` joins nothing
            return None
        first = matches[0]
        for other in matches[1:]:
            if other.word == first.word or other.score < 2 or not other.span or \
                    other.span in first.span or first.span in other.span:
                continue
            at, other_at = ctx.plain.find(first.span), ctx.plain.find(other.span)
            if at < 0 or other_at < 0 or (at < other_at + len(other.span) and
                                          other_at < at + len(first.span)):
                continue  # their words overlap: one wish said two ways
            return other
        return None

    def _phrased(self, ctx, allowed) -> list:
        """Everyday-word matches of this message (every pattern is searched once per text:
        a dialog step, the re-ask and the router may each ask)."""
        cache = ctx.__dict__.setdefault("_phrased", {})
        if ctx.plain not in cache:
            if not ctx.roles:   # `算了不绑了` from someone not bound undoes no binding
                allowed = {w for w in allowed if not self.rule_for(w).bound_only}
            cache[ctx.plain] = self.phrasings.commands_in(ctx.plain, allowed) \
                if ctx.plain else []
        return cache[ctx.plain]

    @staticmethod
    def _phrased_better(ctx, found, matches, allowed) -> bool:
        """`通知都发出去了吗` starts with the word 通知 but says 群发记录 in more words; a
        staff member's `党费收缴情况` is not the cadre's `党费`. A command word followed by a
        space (`人工 我爸家暖气的事…`) and staff commands keep their word: what follows is
        their free text, never to be read as something else."""
        rule = found[0]
        if not matches or matches[0].word in rule.words or \
                any(matches[0].word in w for w in rule.words):  # `取消报名1，…` is no 报名
            return False
        if rule.role in (R.STAFF, R.SUPERVISOR):  # unless the whole message says another
            return matches[0].score >= len(ctx.plain)  # (`值班结束` is 下班)
        word = min((w for w in rule.words if w and ctx.text.startswith(w)), key=len,
                   default=min((w for w in rule.words if w), key=len, default=""))
        if ctx.text[len(word):len(word) + 1] in SEPARATED:
            return False
        return matches[0].score >= len(word) + PHRASED_MARGIN or \
            (word not in allowed and matches[0].score > len(word))

    def _allowed(self, ctx) -> set[str]:
        """Command words this user's everyday words may mean: their roles' commands, and the
        cadre's (which answer "bind first") unless the user is staff and not a cadre."""
        staff_only = R.STAFF in ctx.roles and R.CADRE not in ctx.roles
        return {w for w, rule in self._by_word
                if (R.has_role(ctx.roles, rule.role) or (rule.role == R.CADRE and not staff_only))
                and not (staff_only and R.STAFF in rule.hide_for)}  # staff do not ask for 人工

    def _usable(self, ctx) -> set[str]:
        """The commands this user's roles may really use: a guess never takes someone not
        bound into a cadre's command (`党费`), which would only answer "bind first", nor into
        undoing a binding they do not have (`我不想留手机号，能直接问个事吗` is no 解绑)."""
        return {w for w in self._allowed(ctx) if R.has_role(ctx.roles, self.rule_for(w).role)
                and (ctx.roles or not self.rule_for(w).bound_only)}

    def may_ask_person(self, ctx) -> bool:
        """Whether this user may put a question to a person (`人工`)."""
        return HUMAN in self._allowed(ctx)

    def to_person(self, ctx) -> str:
        """A question for a person (`人工`), who reads it as typed."""
        ctx.typed_args = ctx.raw_text
        return self.run(ctx, self.rule_for(HUMAN), ctx.raw_text or ctx.text)

    def _ticket_choices(self, ctx) -> list[str]:
        """What may be done with a ticket said alone, by the user's role."""
        role = "staff" if R.STAFF in ctx.roles else "cadre" if R.CADRE in ctx.roles else None
        allowed = self._allowed(ctx)
        return [w for w in self.phrasings.ticket_choices.get(role, ()) if w in allowed]

    def topic_of(self, ctx) -> str | None:
        """A question about the conversation itself (phrasings `topics`), unless the
        message also says no, gives up or opens with a yes (`先别提交，我问问我爸再说` is a no)."""
        if ctx.msg_type not in ("text", "voice") or not ctx.text:
            return None
        found = self.phrasings.topic(ctx.raw_text or ctx.text)
        if found is None or ctx.leads_with("yes"):   # `确认，大概多久有人联系？` confirms
            return None
        topic, rest = found
        if any(self.phrasings.answer(rest, group) is not None for group in ("no", "quit")):
            return None   # `先不报，等我问问我妈`: giving up, said with the reason
        if topic == "wait" and self.phrasings.problem_in(ctx.plain):
            return None   # `楼上漏水，我找我儿子看了…`: a description, not a pause
        return topic

    @staticmethod
    def on_topic(ctx, topic: str, state: dict | None) -> str:
        """Answer it in a line; an open question stays open (and its ten minutes start
        again: the user went to ask someone)."""
        if state is not None:
            ctx.resume(state)
        ctx.understood("kind")
        return ctx.reply("core/topic", topic=topic, prompt=(state or {}).get("prompt"))

    def not_an_answer(self, ctx) -> str:
        """A dialog's question got something else: a command runs, kind words get a kind
        word and the question again; anything else, the question again with its options."""
        prompt = (ctx.state or {}).get("prompt") or ctx.menu()
        if ctx.msg_type in ("text", "voice") and ctx.text:
            rated = self.mean(ctx, "rating", quiet=True, words_only=True)
            if rated is not None:
                return f"{rated}\n\n{prompt}"
            if ctx.says_only("quit"):  # 算了, 不弄了
                return self.quit(ctx)
            found = self.command_in(ctx)
            if len(ctx.plain) <= self.phrasings.step_asked_max and \
                    self.phrasings.asks_back(ctx.raw_text or ctx.text) and \
                    not self._elsewhere(ctx, found):   # `啥叫解绑？`, `几个人能收到？`
                explained = self.explain(ctx)
                if explained is not None:
                    return explained
            if isinstance(found, tuple) and not self.giving_up(ctx):
                return self.run_found(ctx, *found)
            if ctx.in_a_clause("quit"):  # 算了，…去不了 / …，拉倒吧 / …，退出吧，谢谢
                return self.quit(ctx)
            kind = ctx.kind or ("thinking" if ctx.says_only("thinking") else None)
            if kind is not None:   # `谢谢`, `我想想啊，怎么说呢`: kindly, and the question again
                ctx.understood("kind")
                return ctx.reply("core/kind_reask", kind=kind, prompt=prompt)
        ctx.understood("reask")
        return ctx.reply("core/reask", prompt=prompt)

    def explain(self, ctx, digits: bool = False) -> str | None:
        """A question about the question in front of the user: what it asks for (a line of
        templates/core/step_explain.txt), then the question again; nothing is answered or
        counted (`digits`: a phone number said at the name question). None where the step
        has no explanation."""
        state = ctx.state or {}
        data, settings = state.get("data", {}), ctx.services.settings
        start, end = settings.quiet_window
        said = ctx.reply("core/step_explain", step=state.get("name"),
                         family=data.get("relation") == "family" or bool(data.get("family")),
                         quiet=settings.quiet_hours if start != end else None,
                         digits=digits).strip()
        if not said:
            return None
        ctx.understood("explain")
        return f"{said}\n\n{state.get('prompt') or ctx.menu()}"

    def _elsewhere(self, ctx, found) -> bool:
        """A question that is a wish for a person (`能找个人帮我弄吗`) or for another feature's
        command said in most of its words (`我党费交了没有？` at the class list), not one about
        the step (`解了他还能收到通知不？` at the unbinding question)."""
        if not isinstance(found, tuple):
            return False
        if found[0].words[:1] == (HUMAN,):
            return True
        if found[0].feature == self.step_features.get((ctx.state or {}).get("name")):
            return False
        return isinstance(self.command_in(ctx, strong_only=True), tuple)

    def giving_up(self, ctx) -> bool:
        """A reason and giving up, in words a command also has (`算了吧，也不是啥大事，不报了`,
        `都没有我想学的，不报了`): giving up, not 取消报名."""
        if not (ctx.leads_with("quit") or ctx.ends_with("quit")):
            return False
        matches = self._phrased(ctx, self._allowed(ctx))
        return bool(matches) and self.phrasings.only(matches[0].span, "quit")

    def ask_about(self, ctx, *, strong_only: bool = True) -> str | None:
        """At a free-text step, a command (`党费`) or a way of giving up (`算了`) is asked
        about in one short question instead of being stored as the content; None when the
        words are simply content (or the user already said they are). `strong_only=False`
        where the words cannot be content anyway (a sentence at the name question)."""
        if (ctx.state or {}).get("data", {}).get("_content_confirmed") or not ctx.text:
            return None
        if ctx.leads_with("quit") and not ctx.says_only("quit"):  # `先不报了，看看我的课`
            after = self._after_pause(ctx)
            if after is not None:
                ctx.end()
                return self.run_found(ctx, *after)
        found = self.command_in(ctx, strong_only=strong_only)
        if found is None and ctx.leads_with("pause"):  # `等一下，我先问问我的党费交了没有`
            found = self._after_pause(ctx, asked=True)
        quitting = ctx.says_only("quit") or (not isinstance(found, tuple) and
                                             ctx.in_a_clause("quit"))
        if not (isinstance(found, tuple) or quitting):
            return None
        back = dict(ctx.state)
        word = None if quitting or not isinstance(found, tuple) else \
            (found[0].words[0] if found[0].words else None)
        label = found[0].menu if word and found[0].menu else word
        ctx.understood("ask_command" if word else "ask_quit")
        return ctx.ask("dialog.asked", "core/ask_about", data={
            "word": word, "args": found[1] if word else "", "back": back,
            "raw": ctx.raw_text}, label=label, quitting=word is None)

    def _after_pause(self, ctx, *, asked: bool = False):
        """(rule, args) for a command that covers most of what follows a pause clause (or,
        where it is only `asked` about, one said in words that outweigh a problem's:
        `等一下，我先问问，我这个月党费交了没有啊，…`)."""
        rest = self.phrasings.after_pauses(ctx.raw_text or ctx.text)
        matches = self.phrasings.commands_in(rest, self._allowed(ctx)) if rest else []
        if not matches or (matches[0].score / len(rest) < WEAK_COVERAGE and
                           not (asked and matches[0].strong)) or \
                self.phrasings.only(matches[0].span, "quit"):  # `今天先不报了`: giving up
            return None  # the pause says a question is coming: it is asked about, not run
        return self.rule_for(matches[0].word), matches[0].args

    def quit(self, ctx) -> str:
        """Leave the open dialog: `算了`, `不绑了，我爸说他自己弄`."""
        ctx.end()
        ctx.understood("quit")
        return ctx.reply("core/cancelled", menu=ctx.menu())

    def mean(self, ctx, meaning: str, *, quiet: bool = False, **values) -> str | None:
        """Run the handler registered for a meaning; None when there is none, or when a
        `quiet` one finds it does not apply."""
        handler = self.meanings.get(meaning)
        if handler is None:
            return None
        answer = handler(ctx, **values)
        if answer is not None or not quiet:
            ctx.understood(meaning)
        return answer

    def _menu_choice_in_disguise(self, ctx, rule: Rule, args: str) -> bool:
        """`回复1` from someone who may not use 回复 is an elderly user copying '请回复1'.

        Only the word and number written together count: `接单 12` is a staff command.
        """
        if R.has_role(ctx.roles, rule.role) or rule.role == R.CADRE:
            return False
        if ctx.text[:len(ctx.text) - len(args)].endswith(" "):
            return False
        number = ctx.number(args)
        return number is not None and 1 <= number <= len(self.menu_rules(ctx.roles))

    def _dispatch_event(self, ctx) -> str | None:
        if ctx.event == "click":
            rule = self.by_click(ctx.message.key or "")
            return self.run(ctx, rule, "") if rule else ctx.menu()
        handler = self.events.get(ctx.event or "")
        if handler:
            return handler(ctx)
        return None if ctx.event in SILENT_EVENTS else ctx.menu()

    def _step(self, ctx) -> str | None:
        """Run the open dialog's step; the router owns what is not an answer (NEW_MESSAGE:
        the dialog is left and the message handled as if no question was open) and the
        feature's refusals (the dialog ends with the feature's answer)."""
        name = ctx.state["name"]
        try:
            answer = self.steps[name](ctx)
        except Refusal as refusal:
            refused = self.step_refusals.get(name)
            if refused is None:
                raise
            ctx.end()
            return refused(ctx, refusal)
        if answer is NEW_MESSAGE:
            if ctx.msg_type in ("text", "voice") and ctx.text and ctx.says_only("quit"):
                return self.quit(ctx)  # `不看了` leaves the list shown
            ctx.end()
            return self.dispatch(ctx)
        return answer

    def _step_refused(self, ctx) -> str:
        """The user lost the role a dialog needs (unbound by an operator, no longer an
        admin) while it was open: the dialog ends with the same answer a command gets."""
        needed = self.step_roles.get(ctx.state["name"])
        logger.warning("permission denied: %s in dialog %s (needs %s, has %s)", ctx.openid,
                       ctx.state["name"], needed, sorted(ctx.roles))
        ctx.end()
        ctx.understood("refused")
        return ctx.reply("core/bind_first" if needed == R.CADRE else "core/no_permission")

    def run_found(self, ctx, rule: Rule, args: str) -> str | None:
        """Run a command found in the message; words a pattern captured are passed on as
        typed (`跟12号说一声，师傅下午到。` keeps its comma and full stop)."""
        head, _, text = args.partition(" ") if args[:1].isdigit() else ("", "", args)
        typed = self.phrasings.as_typed(text, ctx.raw_text or "") if text else None
        if typed is not None:
            ctx.typed_args = f"{head} {typed}".strip()
        return self.run(ctx, rule, args)

    def run(self, ctx, rule: Rule, args: str) -> str | None:
        """Check the rule's role, then run its handler (the one place roles are checked)."""
        ctx.understood(rule.words[0] if rule.words else rule.click)
        if not R.has_role(ctx.roles, rule.role):
            logger.warning("permission denied: %s tried %s (needs %s, has %s)", ctx.openid,
                           rule.words[:1] or rule.click, rule.role, sorted(ctx.roles))
            if rule.role == R.CADRE:
                return ctx.reply("core/bind_first")
            return ctx.reply("core/no_permission")
        if rule.role == R.CADRE and ctx.must_choose_whom():
            return self.mean(ctx, "whom", word=rule.words[0] if rule.words else None,
                             click=rule.click, args=args)
        ctx.end(finished=False)  # a command starts afresh; an interrupted dialog is kept
        try:
            return rule.handler(ctx, normalise(args))
        except Refusal as refusal:
            if rule.refused is None:
                raise
            return rule.refused(ctx, refusal)


# Events WeChat sends for bookkeeping; the user is not waiting for an answer.
SILENT_EVENTS = {"view", "location", "templatesendjobfinish", "masssendjobfinish",
                 "unsubscribe"}
