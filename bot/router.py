"""Handler registration (Handlers) and dispatch (Router), with the role check in one place."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from bot import roles as R
from bot.errors import Refusal
from bot.text import normalise

logger = logging.getLogger(__name__)

MENU_WORDS = {"菜单", "帮助", "?", "你好", "您好", "menu", "help"}
CANCEL_WORDS = {"取消", "退出", "0"}


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


@dataclass
class Handlers:
    """A feature's handlers; registered on the Router by create_app."""

    name: str
    rules: list[Rule] = field(default_factory=list)
    steps: dict[str, Callable] = field(default_factory=dict)
    events: dict[str, Callable] = field(default_factory=dict)
    messages: dict[str, Callable] = field(default_factory=dict)
    resolvers: list[Callable] = field(default_factory=list)
    refused: Callable | None = None

    def command(self, *words: str, click: str | None = None, role: str | None = None,
                menu: str | None = None, order: int = 100, hide_for=(),
                show_for: str | None = None):
        """Register `handler(ctx, args) -> str` for command words (prefix match) and a click key."""
        def deco(fn):
            self.rules.append(Rule(fn, tuple(words), click, role, menu, order,
                                   frozenset(hide_for), show_for))
            return fn
        return deco

    def step(self, *states: str):
        """Register `handler(ctx) -> str` for dialog states."""
        def deco(fn):
            for state in states:
                self.steps[state] = fn
            return fn
        return deco

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

    def refusal(self, fn):
        """Register `fn(ctx, refusal) -> str`: how this feature's commands answer a Refusal."""
        self.refused = fn
        return fn

    def roles(self, fn):
        """Register `fn(session, openid) -> set[str]` that contributes roles."""
        self.resolvers.append(fn)
        return fn


class Router:
    """Routes a Ctx to the one handler that should answer it."""

    def __init__(self):
        self.rules: list[Rule] = []
        self.steps: dict[str, Callable] = {}
        self.events: dict[str, Callable] = {}
        self.messages: dict[str, Callable] = {}
        self.resolvers: list[Callable] = [R.base_roles]
        self._by_word: list[tuple[str, Rule]] = []

    def register(self, handlers: Handlers) -> None:
        """Add a feature's handlers; a word or state registered twice is a programming error."""
        for rule in handlers.rules:
            rule.refused = handlers.refused
            for word in rule.words:
                if any(w == word for w, _ in self._by_word):
                    raise ValueError(f"command word {word!r} registered twice")
                self._by_word.append((word, rule))
        self.rules.extend(handlers.rules)
        for table, new in ((self.steps, handlers.steps), (self.events, handlers.events),
                           (self.messages, handlers.messages)):
            dup = set(table) & set(new)
            if dup:
                raise ValueError(f"{handlers.name}: registered twice: {sorted(dup)}")
            table.update(new)
        self.resolvers.extend(handlers.resolvers)
        # Longest word first, so 家属绑定 wins over 绑定 and 取消报名 over 取消.
        self._by_word.sort(key=lambda pair: -len(pair[0]))

    def roles_of(self, session, openid: str) -> set[str]:
        """Every role the openid holds, from every resolver."""
        found: set[str] = set()
        for resolver in self.resolvers:
            found |= resolver(session, openid)
        return found

    # ---- matching ------------------------------------------------------------------------
    def match(self, text: str) -> tuple[Rule, str] | None:
        """The rule whose word starts the text, and the rest of the text as arguments."""
        for word, rule in self._by_word:
            if text == word or text.startswith(word):
                return rule, text[len(word):].strip()
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

    # ---- dispatch ------------------------------------------------------------------------
    def dispatch(self, ctx) -> str | None:
        """Answer one message: events, global words, dialog steps, commands, menu numbers."""
        if ctx.msg_type == "event":
            return self._dispatch_event(ctx)
        text = ctx.text
        if text in MENU_WORDS:
            ctx.end()
            return ctx.menu()
        in_dialog = ctx.state is not None and ctx.state.get("name") in self.steps
        if text in CANCEL_WORDS and (in_dialog or text != "0"):
            ctx.end()
            return ctx.reply("core/cancelled" if in_dialog else "core/nothing_to_cancel",
                             menu=ctx.menu())
        if in_dialog:
            return self.steps[ctx.state["name"]](ctx)
        if ctx.msg_type not in ("text", "voice"):
            handler = self.messages.get(ctx.msg_type)
            return handler(ctx) if handler else ctx.menu(ctx.reply("core/not_text"))
        if not text:
            return ctx.menu(ctx.reply("core/voice_unclear" if ctx.msg_type == "voice"
                                      else "core/not_understood"))
        found = self.match(text)
        if found and not self._menu_choice_in_disguise(ctx, *found):
            return self.run(ctx, found[0], found[1])
        number = ctx.number(found[1] if found else text)
        items = self.menu_rules(ctx.roles)
        if number is not None and 1 <= number <= len(items):
            return self.run(ctx, items[number - 1], "")
        return ctx.menu(ctx.reply("core/not_understood"))

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

    def run(self, ctx, rule: Rule, args: str) -> str | None:
        """Check the rule's role, then run its handler (the one place roles are checked)."""
        if not R.has_role(ctx.roles, rule.role):
            logger.warning("permission denied: %s tried %s (needs %s, has %s)", ctx.openid,
                           rule.words[:1] or rule.click, rule.role, sorted(ctx.roles))
            if rule.role == R.CADRE:
                return ctx.reply("core/bind_first")
            return ctx.reply("core/no_permission")
        ctx.end()  # a command started outside a dialog starts afresh
        try:
            return rule.handler(ctx, normalise(args))
        except Refusal as refusal:
            if rule.refused is None:
                raise
            return rule.refused(ctx, refusal)


# Events WeChat sends for bookkeeping; the user is not waiting for an answer.
SILENT_EVENTS = {"view", "location", "templatesendjobfinish", "masssendjobfinish",
                 "unsubscribe"}
