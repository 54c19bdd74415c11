"""Core conversation: `更多`, follow/unfollow/scan, and non-text messages outside dialogs."""
from __future__ import annotations

from datetime import timedelta

from bot.inbox import abandoned
from bot.jobs import JobSpec
from bot.router import Handlers
from models import utcnow

handlers = Handlers("core")
ABANDONED_AFTER = timedelta(minutes=2)  # far past the webhook's budget and WeChat's retries
# Events nobody waits on an answer for (bookkeeping): settled without telling anyone.
SILENT_EVENTS = {"templatesendjobfinish", "masssendjobfinish", "location", "view", "unsubscribe"}


@handlers.command("更多")
def more(ctx, args):
    """The next part of a reply that was too long for one message."""
    rest = ctx.follower.more_text
    if not rest:
        return ctx.reply("core/no_more")
    ctx.follower.more_text = None
    return rest


@handlers.event("subscribe", "subscribe_scan")
def subscribe(ctx):
    """Welcome a new (or returning) follower; remember the QR scene they came from."""
    follower = ctx.follower
    returning = follower.unsubscribed_at is not None
    follower.subscribed, follower.subscribed_at = True, utcnow()
    if ctx.event == "subscribe_scan" and ctx.message.scene_id:
        follower.scene = str(ctx.message.scene_id)[:64]
    ctx.log("subscribed (scene %s, returning %s)", follower.scene, returning)
    return ctx.menu(ctx.reply("core/welcome", returning=returning))


@handlers.event("unsubscribe")
def unsubscribe(ctx):
    """Mark the follower inactive: no more pushes, nothing deleted."""
    ctx.follower.subscribed, ctx.follower.unsubscribed_at = False, utcnow()
    ctx.end()
    ctx.log("unsubscribed")
    return None


@handlers.event("scan")
def scan(ctx):
    """A follower scanned a QR code again: note the scene, show the menu."""
    if ctx.message.scene_id:
        ctx.follower.scene = str(ctx.message.scene_id)[:64]
    return ctx.menu()


@handlers.message("image", "location", "link", "video", "shortvideo")
def other_message(ctx):
    """Outside a dialog a picture, place or link has nowhere to go: say so, offer the menu."""
    return ctx.menu(ctx.reply("core/not_text"))


# ---- messages lost with a dead process --------------------------------------------------------
def inbox_rescue(job) -> int:
    """Job: tell users whose message died with its process (and whose retries never came)."""
    rows = abandoned(job.db, utcnow() - ABANDONED_AFTER)
    for row in rows:
        row.status, row.reply_mode, row.handled_at = "failed", "late", utcnow()
        if (row.event or "").lower() in SILENT_EVENTS:
            continue
        at = row.received_at.astimezone(job.settings.zone)
        job.push(row.openid, "core/lost_message", campaign=f"lost:{row.id}", kind="reply",
                 text=(row.content or "")[:40], at=at, event=row.event)
    return len(rows)


jobs = [JobSpec("inbox_rescue", inbox_rescue, {"trigger": "interval", "minutes": 2},
                "Tell users whose message was lost with a dead process to send it again")]
