"""Turns one recorded inbound message into a Ctx, routes it, and fits the reply."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from bot.channel import EVENT_KINDS, cs_window
from bot.context import Ctx, Services
from bot.db import insert_missing
from bot.text import WECHAT_TEXT_LIMIT, cut_to_bytes, normalise
from models import Follower


# Messages and events that open (or re-open) the 48-hour customer-service window.
WINDOW_OPENERS = {"text", "voice", "image", "location", "link", "video", "shortvideo"}
# A window opened less than this ago by the same kind, with nothing sent in it yet, is not
# written again: the row stays unchanged for a user chatting away (the window then counts
# from up to a minute earlier, which only shortens it).
WINDOW_REFRESH = timedelta(seconds=60)
WINDOW_EVENTS = {"click": "click", "subscribe": "follow", "subscribe_scan": "follow",
                 "scan": "scan"}
# The row lock makes one user's messages run one at a time, in order: a confirm `1` tapped
# twice sees the dialog the first copy left, not the one both started from. Built once (its
# cache key too): only the openid changes.
LOCKED_FOLLOWER = select(Follower).where(Follower.openid == bindparam("openid")) \
    .with_for_update()


class Conversation:
    """The handler the Inbox calls for each new message."""

    def __init__(self, services: Services):
        self.s = services
        self._with_roles = None

    def __call__(self, session, message, row):
        """Route the message; returns (reply text or None, deliveries pushed)."""
        now = datetime.now(self.s.settings.zone)
        follower, roles = self.touch_follower(session, message, now)
        raw = getattr(message, "content", None) or getattr(message, "recognition", None) or ""
        ctx = Ctx(services=self.s, db=session, openid=message.source, follower=follower,
                  roles=roles,
                  msg_type=message.type, event=getattr(message, "event", None),
                  text=normalise(raw), raw_text=raw, message=message, now=now,
                  inbound_id=row.id)
        reply = self.s.router.dispatch(ctx)
        if ctx.outcome:
            row.understood = ctx.outcome[:48]  # logged with the reply (bot/inbox.py)
        return self.fit(follower, reply), ctx.pushed

    def touch_follower(self, session, message, now: datetime) -> tuple[Follower, set[str]]:
        """Get or create the follower (locked) and note when the chat window last opened;
        with the sender's roles, read in the same statement."""
        openid = message.source
        kind = message.type if message.type in WINDOW_OPENERS else \
            WINDOW_EVENTS.get(getattr(message, "event", None) or "")
        found = self._locked(session, openid)  # one at a time (the lock), and who they are
        if found is None:
            # Created with its window open, so a first message writes the row once; a
            # concurrent first message of the same user finds it there (and waits on its lock).
            opened = {"last_inbound_at": now, "last_inbound_kind": kind} if kind else {}
            insert_missing(session, Follower, {"openid": openid, "subscribed": True,
                                               "subscribed_at": now, **opened}, "openid")
            found = self._locked(session, openid)   # roles too: bindings may predate the row
        follower, roles = found
        # A click/follow/scan opens a short window (3 in a minute); it must not replace a
        # user message's 48-hour window that still has messages left.
        keeps_message_window = kind in EVENT_KINDS and \
            follower.last_inbound_kind not in EVENT_KINDS and \
            cs_window(follower, now, self.s.settings)[0]
        if kind and not keeps_message_window and not _fresh_window(follower, kind, now):
            follower.last_inbound_at, follower.last_inbound_kind = now, kind
            follower.cs_sent_since_inbound = 0
        return follower, roles

    def _locked(self, session, openid: str) -> tuple[Follower, set[str]] | None:
        """The follower row, locked, and the sender's roles; None when there is no row."""
        found = session.execute(self._locked_with_roles(), {"openid": openid}).first()
        return None if found is None else (found[0], self.s.router.role_query.held(found[1:]))

    def _locked_with_roles(self):
        """The locked follower row and the role columns, one statement built once (the
        role resolvers are all registered by the first message)."""
        if self._with_roles is None:
            self._with_roles = self.s.router.role_query.along(LOCKED_FOLLOWER) \
                .with_for_update(of=Follower)
        return self._with_roles

    def fit(self, follower: Follower, reply: str | None) -> str | None:
        """Cut a reply to WeChat's limit; the rest waits for `更多`."""
        if not reply:
            return reply
        head, rest = cut_to_bytes(reply, WECHAT_TEXT_LIMIT)
        if not rest:
            if follower.more_text is not None:  # unchanged rows are not flushed at all
                follower.more_text = None
            return reply
        hint = self.s.render("core/more_hint")  # only for a reply that is cut
        room = WECHAT_TEXT_LIMIT - len(hint.encode()) - 2
        head, rest = cut_to_bytes(reply, room)
        follower.more_text = rest
        return f"{head}\n{hint}"

    def push_late(self, session, row, reply: str):
        """The reply of a message that ran past the budget, as a push to its sender."""
        return self.s.outbox.push(session, row.openid, "core/raw", {"text": reply},
                                  campaign=f"late-reply:{row.id}")

    def after_commit(self, pushed) -> None:
        """Deliver what the handler pushed, now that it is committed."""
        self.s.outbox.after_commit(pushed)

    def spooled_reply(self, message) -> str | None:
        """What a user reads while their message waits in the spool (nothing for events)."""
        if message.type == "event":
            return None
        return self.s.render("core/spooled")

    def error_reply(self) -> str:
        """What a user reads when something broke on our side."""
        return self.s.render("core/error")


def _fresh_window(follower: Follower, kind: str, now: datetime) -> bool:
    """Whether the follower's window was opened by this kind within WINDOW_REFRESH and
    nothing has been sent in it since (writing it again would change nothing that counts)."""
    opened = follower.last_inbound_at  # (events open a window of a minute: always written)
    return kind in WINDOW_OPENERS and opened is not None and follower.last_inbound_kind == kind \
        and not follower.cs_sent_since_inbound and timedelta(0) <= now - opened < WINDOW_REFRESH
