"""The channel rules of PRODUCT.md 7.4: the chat window and its count, quiet hours, templates.

A push goes as a customer-service (chat) message while the user's window is open and its count
lasts: `cs_quota_message` (5) messages within `cs_window_hours` (48) of a user's message, or
`cs_quota_event` (3) within `cs_event_window_seconds` (60) of a menu click, follow or scan.
Otherwise it goes by the channel config/templates.yaml gives for its kind of push
(bot/notices.py): a subscription notice (bizsend) where the kind's channel is `subscribe` and the
user accepted it (a long-term acceptance, or a one-time one not yet used: bot/subscriptions.py),
else the kind's template message, else WECHAT_TEMPLATE_NOTICE, else undeliverable with the
reason (bot/delivery.py, `Deliverer._closed_window`).
"""
from __future__ import annotations

from datetime import datetime, timedelta

EVENT_KINDS = {"click", "follow", "scan"}
SANDBOX_TEMPLATE = "sandbox-notice"


def window_rule(kind: str | None, settings) -> tuple[timedelta, int]:
    """How long a window opened by `kind` lasts and how many messages it allows."""
    if kind in EVENT_KINDS:
        return timedelta(seconds=settings.cs_event_window_seconds), settings.cs_quota_event
    return timedelta(hours=settings.cs_window_hours), settings.cs_quota_message


def cs_window(follower, now: datetime, settings) -> tuple[bool, datetime | None, int]:
    """(open, until, remaining): can a chat message reach this follower now, until when, how many.

    `follower` is a Follower (or any row with its window columns); `until` is in now's zone.
    """
    opened = getattr(follower, "last_inbound_at", None) if follower is not None else None
    if opened is None or getattr(follower, "subscribed", True) is False:
        return False, None, 0
    span, quota = window_rule(follower.last_inbound_kind, settings)
    until = opened + span
    remaining = max(0, quota - (follower.cs_sent_since_inbound or 0))
    if now >= until or remaining == 0:
        return False, None, 0
    return True, until.astimezone(now.tzinfo), remaining


def quiet_until(now: datetime, settings) -> datetime | None:
    """The end of the quiet-hours window when `now` is inside it (in YINLING_TZ), else None."""
    start, end = settings.quiet_window
    if start == end:
        return None
    local = now.astimezone(settings.zone)
    t = local.time()
    if start < end:
        inside, days = start <= t < end, 0
    else:  # the window spans midnight, e.g. 21:00-08:00
        inside, days = (t >= start or t < end), (1 if t >= start else 0)
    if not inside:
        return None
    return datetime.combine(local.date() + timedelta(days=days), end, tzinfo=settings.zone)


def held_until(kind: str, now: datetime, settings) -> datetime | None:
    """When a push of this kind may go out if not now: scheduled and bulk wait out quiet hours."""
    return None if kind == "reply" else quiet_until(now, settings)


def notice_template(settings) -> str:
    """The template id for closed windows ('' when none is configured; a stand-in in sandbox)."""
    return settings.wechat_template_notice or (SANDBOX_TEMPLATE if settings.sandbox else "")
