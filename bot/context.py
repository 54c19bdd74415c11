"""Ctx: everything a chat handler may use, and nothing it may not."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any


from bot.text import mask_phones_in, normalise, parse_number
from bot.work import Work

logger = logging.getLogger(__name__)
# Dialogs worth going on with after a pause (a report half told, a notice half written).
RESUMABLE = ("report.", "broadcast.", "festival.")
DRAFT_KEPT = timedelta(days=1)
ACTING_CHOICE_KEPT = timedelta(hours=1)
ARG_SEPARATORS = " 　，,:：、。."  # between a command word and what follows it


@lru_cache(maxsize=1)
def _bindings_query():
    """A user's bindings with their cadre in the same statement ('self' before 'family'),
    built once: a cadre's command reads ctx.cadre right after (no second query)."""
    from sqlalchemy import bindparam, select
    from sqlalchemy.orm import joinedload

    from models import Binding

    return select(Binding).where(Binding.openid == bindparam("openid")) \
        .options(joinedload(Binding.cadre)).order_by(Binding.relation.desc(), Binding.id)


@dataclass
class Services:
    """Process-wide collaborators handed to every Ctx (built once in create_app)."""

    settings: Any
    render: Any
    dialogs: Any
    outbox: Any
    router: Any
    role_resolvers: list = field(default_factory=list)
    media: Any = None   # bot.media.MediaKeeper: tickets' photos and voice, downloaded and kept


@dataclass(frozen=True)
class Actor:
    """Who acts for a cadre: the openid, the cadre they are or act for, whether as family."""

    openid: str
    cadre_id: int
    on_behalf: bool

    @property
    def role(self) -> str:
        """`family` when acting for the cadre, else `cadre`."""
        return "family" if self.on_behalf else "cadre"


@dataclass(kw_only=True)
class Ctx(Work):
    """One inbound message being handled: the unit of work, plus who, what, and the dialog."""

    openid: str
    follower: Any
    roles: set
    msg_type: str
    event: str | None
    text: str
    raw_text: str
    message: Any
    inbound_id: int | None = None
    # How this message was understood (`党费`, `kind`, `yes`, …): stored on the inbound row.
    outcome: str | None = None
    # The arguments as typed when the router found them inside a sentence (punctuation kept).
    typed_args: str | None = None
    _state: dict | None = None
    _state_loaded: bool = False

    # ---- who the user acts for --------------------------------------------------------
    @property
    def bindings(self) -> list:
        """Every cadre this user is or acts for (own first): a child may act for both parents."""
        if not hasattr(self, "_bindings"):
            self._bindings = list(self.db.scalars(_bindings_query(), {"openid": self.openid}))
        return self._bindings

    @property
    def binding(self):
        """The binding this user acts through now: the cadre they chose (for an hour) when
        they act for several, else their own, else the first family binding; or None."""
        chosen = self.follower.acting_cadre_id if self.follower is not None and \
            self.follower.acting_until and self.follower.acting_until > self.now else None
        return next((b for b in self.bindings if b.cadre_id == chosen),
                    self.bindings[0] if self.bindings else None)

    def act_for(self, cadre_id: int) -> None:
        """Act for this cadre for the next hour (the user chose whom)."""
        self.follower.acting_cadre_id, self.follower.acting_until = cadre_id, \
            self.now + ACTING_CHOICE_KEPT

    def must_choose_whom(self) -> bool:
        """Several cadres and no recent choice: whom a cadre's command is for must be asked."""
        return len(self.bindings) > 1 and not (
            self.follower is not None and self.follower.acting_until
            and self.follower.acting_until > self.now)

    @property
    def cadre(self):
        """The cadre this user is or acts for (family members act for their cadre), or None."""
        return self.binding.cadre if self.binding else None

    @property
    def on_behalf(self) -> bool:
        """True when a family member is acting for the cadre."""
        return bool(self.binding and self.binding.relation == "family")

    @property
    def actor(self) -> Actor | None:
        """This user as an Actor for the cadre they are or act for (None when unbound)."""
        cadre = self.cadre
        return Actor(self.openid, cadre.id, self.on_behalf) if cadre else None

    @property
    def today(self):
        """The local date (in the configured zone) of this message."""
        return self.now.astimezone(self.services.settings.zone).date()

    # ---- answering (reply, push and push_many come from Work) ----------------------------
    def menu(self, note: str | None = None) -> str:
        """The numbered main menu for this user's roles, optionally after a note."""
        return self.services.router.menu_text(self, note)

    # ---- dialog state --------------------------------------------------------------------
    @property
    def state(self) -> dict | None:
        """The current dialog state ({'name', 'data', 'prompt'}) or None."""
        if not self._state_loaded:
            self._state = self.services.dialogs.get(self.follower, self.now)
            self._state_loaded = True
        return self._state

    @property
    def data(self) -> dict:
        """The current dialog's collected answers (empty outside a dialog)."""
        return (self.state or {}).get("data", {})

    def ask(self, state: str, template: str, data: dict | None = None, **values) -> str:
        """Move the dialog to `state`, remember the question, and return it."""
        prompt = self.reply(template, **values)
        new = {"name": state, "data": self.data if data is None else data, "prompt": prompt}
        self.resume(new)
        return prompt

    def resume(self, state: dict) -> None:
        """Put the user in front of a dialog state (new, or kept from before)."""
        self.services.dialogs.set(self.follower, state, self.now)
        self._state, self._state_loaded = state, True
        self._keep_draft(state)

    def save(self, **updates) -> None:
        """Merge updates into the dialog data without changing the question."""
        if self.state is None:
            return
        self._state["data"] = {**self.data, **updates}
        self.services.dialogs.set(self.follower, self._state, self.now)
        self._keep_draft(self._state)

    def _keep_draft(self, state: dict) -> None:
        """A dialog worth going on with after a pause is also kept a day on the follower row
        (which every message updates anyway): a late answer can pick it up again."""
        if self.follower is not None and state["name"].startswith(RESUMABLE):
            self.follower.draft = json.dumps(state, ensure_ascii=False)
            self.follower.draft_until = self.now + DRAFT_KEPT

    def reask(self) -> str:
        """Not an answer to the question: a command runs instead, kind words are answered
        kindly; otherwise the same question again, with its options."""
        return self.services.router.not_an_answer(self)

    def asked_about(self) -> str | None:
        """At a free-text step: a command or `算了` is asked about, not taken as content."""
        return self.services.router.ask_about(self)

    def end(self, finished: bool = True) -> None:
        """Leave the dialog; `finished=False` when another command interrupted it (its draft
        is kept, to be offered again)."""
        self.services.dialogs.clear(self.follower)
        self._state, self._state_loaded = None, True
        if finished and self.follower is not None and \
                (self.follower.draft or self.follower.draft_until):  # no write for nothing
            self.follower.draft = self.follower.draft_until = None

    # ---- input helpers -------------------------------------------------------------------
    def reread(self, text: str) -> None:
        """Take only `text` as the message from here on (what follows a self-introduction)."""
        self.raw_text, self.text = text, normalise(text)
        for cached in ("_plain", "_plain_openers", "_phrased"):
            self.__dict__.pop(cached, None)

    @property
    def plain(self) -> str:
        """The text without spaces, punctuation, fillers and polite openers (for matching)."""
        if not hasattr(self, "_plain"):
            self._plain = self.services.router.phrasings.plain(self.text)
        return self._plain

    @property
    def plain_openers(self) -> str:
        """`plain` with its polite openers kept (`我想想` is not `想`)."""
        if not hasattr(self, "_plain_openers"):
            self._plain_openers = self.services.router.phrasings.plain(self.text, openers=False)
        return self._plain_openers

    @property
    def kind(self) -> str | None:
        """`thanks` / `ok` / `greeting` when the message is only kind words, else None."""
        phrasings = self.services.router.phrasings
        return phrasings.kind_of(self.plain, self.text) or phrasings.kind_of(self.plain_openers)

    def correct_slips(self) -> bool:
        """Fix key words typed or heard wrong by sound in `plain`; whether any was fixed."""
        fixed = self.services.router.phrasings.corrected(self.plain)
        changed, self._plain = fixed != self.plain, fixed
        return changed

    def understood(self, outcome: str) -> None:
        """Note how this message was understood (the first note wins)."""
        self.outcome = self.outcome or outcome

    def answer(self, *groups: str) -> str | None:
        """Which answer group of config/phrasings.yaml (`yes`, `no`, `urgent`, …) this is;
        else what its first clause answers (`急，老人扛不住冻`, `先别发，时间写错了`)."""
        phrasings = self.services.router.phrasings
        found = phrasings.answer(self.plain, *groups)
        corrected = phrasings.after_correction(self.raw_text or self.text)
        if found is None and corrected is not None:  # `一般吧……哎不对，还是紧急`
            found = phrasings.answer(phrasings.plain(corrected), *groups)
            last = phrasings.last_clause(corrected)
            if found is None and last is not None:  # `不对，老太太都感冒了，还是紧急`
                found = phrasings.answer(last, *groups)
            return found
        for clause in (phrasings.first_clause, phrasings.last_clause):
            if found is None:  # `…，我弟弟管，解吧`: the decision at the end
                part = clause(self.raw_text or self.text)
                found = phrasings.answer(part, *groups) if part is not None else None
        return found

    def choose(self, numbers: dict, *groups: str, note: bool = True,
               careful: bool = False) -> str | None:
        """The option chosen, by its number (`numbers`) or in words (answer `groups`);
        noted as how the message was understood unless `note` is off (the choice only
        leads to what the message really does). None when it is neither. A question is no
        yes (`提交了能改吗`) unless it opens with one (`好的，…啥时候来人？`); `careful` (the
        answer undoes something) not even then (`好的，解了还能再绑吗？`)."""
        number = self.number()
        choice = numbers.get(number) if number is not None else self.answer(*groups)
        if choice == "yes" and number is None and (careful or not self.leads_with("yes")) and \
                self.services.router.phrasings.asks_back(self.raw_text or self.text):
            choice = None
        if choice is not None and note:
            self.understood(choice)
        return choice

    def words_after(self, words, args: str) -> str:
        """The text after the first of `words` it starts with, as the user wrote it
        (punctuation kept, for words relayed to a person); `args` when it starts with none."""
        raw = (self.raw_text or "").strip()
        for word in sorted((w for w in words if w), key=len, reverse=True):
            if raw.startswith(word):
                return raw[len(word):].lstrip(ARG_SEPARATORS)
        return self.typed_args or args

    def says_only(self, group: str) -> bool:
        """Whether the message is only words of one answer group (`算了，不弄了` for quit;
        `我想想` for thinking, its opener kept)."""
        phrasings = self.services.router.phrasings
        return phrasings.only(self.plain, group) or phrasings.only(self.plain_openers, group)

    def mentions(self, group: str) -> bool:
        """Whether any word of one answer group stands anywhere in the message."""
        return any(w in self.plain for w in self.services.router.phrasings.answers.get(group, ()))

    def without(self, group: str) -> str:
        """The message made plain with one answer group's words taken out (`尾号` from
        `尾号三七二一`)."""
        return self.services.router.phrasings.without(self.plain, group)

    def leads_with(self, group: str) -> bool:
        """Whether the message opens with words of one answer group and then gives a reason
        (`算了，这几个时间我都去不了` for quit)."""
        return self.services.router.phrasings.leads_with(self.raw_text or self.text, group)

    def in_a_clause(self, group: str) -> bool:
        """Whether one clause of several is only words of one answer group (`…，不看了，退出吧，
        谢谢你们啊` for quit)."""
        return self.services.router.phrasings.in_a_clause(self.raw_text or self.text, group)

    def ends_with(self, group: str) -> bool:
        """Whether the message ends with words of one answer group after a reason
        (`都没啥意思，拉倒吧` for quit)."""
        return self.services.router.phrasings.ends_with(self.raw_text or self.text, group)

    def number(self, text: str | None = None) -> int | None:
        """The answer as a number (digits, full-width, Chinese numerals), or None; after a
        correction (`二，不对，是三`) the number that follows it."""
        if text is not None:
            return parse_number(text)
        number = parse_number(self.text)
        if number is None:
            corrected = self.services.router.phrasings.after_correction(self.raw_text or self.text)
            number = parse_number(corrected) if corrected else None
        return number

    def log(self, what: str, *args) -> None:
        """Log a line about this user, with phone numbers masked."""
        logger.info("[%s] " + mask_phones_in(what), self.openid, *args)
