"""Subscription notices (订阅通知, PRODUCT.md 7.4): WeChat's three events, recorded.

- subscribe_msg_popup_event: each `<List>` item accepted or rejected on a pop-up (our pages'
  wx-open-subscribe button, or an article) becomes the user's Subscription row for that
  template; an accepted one-time template adds one notice.
- subscribe_msg_change_event: the user turned a notice off in WeChat's settings.
- subscribe_msg_sent_event: WeChat's final word on a notice we sent goes on its delivery, as
  TEMPLATESENDJOBFINISH does for templates; an error code marks it failed.

None of them is answered: the user is on a page or in WeChat's settings, not in the chat.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from bot.router import Handlers
from bot.subscriptions import record_answer
from bot.wxevents import CHANGE, POPUP, SENT
from models import Delivery

logger = logging.getLogger(__name__)
handlers = Handlers("subscriptions")
SCENES = {"1": "page", "2": "article"}   # PopupScene


@handlers.event(POPUP)
def popup_answered(ctx):
    """The user accepted or rejected subscription notices on a pop-up."""
    for item in ctx.message.items:
        scene = SCENES.get(item["PopupScene"], f"popup{item['PopupScene']}"[:16])
        record_answer(ctx.db, ctx.openid, item["TemplateId"], item["SubscribeStatusString"],
                      scene, ctx.now)
        ctx.log("subscription %s: %s (%s)", item["TemplateId"], item["SubscribeStatusString"],
                scene)
    return None


@handlers.event(CHANGE)
def settings_changed(ctx):
    """The user turned subscription notices off (or on) in WeChat's notice settings."""
    for item in ctx.message.items:
        record_answer(ctx.db, ctx.openid, item["TemplateId"], item["SubscribeStatusString"],
                      "settings", ctx.now)
        ctx.log("subscription %s: %s in WeChat's settings", item["TemplateId"],
                item["SubscribeStatusString"])
    return None


@handlers.event(SENT)
def notice_finished(ctx):
    """WeChat's final word on subscription notices we sent."""
    for item in ctx.message.items:
        delivery = record_subscribe_receipt(ctx.db, ctx.openid, item["MsgID"],
                                            item["ErrorCode"], item["ErrorStatus"], ctx.now)
        if delivery is not None:
            ctx.log("subscription delivery %s: %s %s", delivery.id, item["ErrorCode"],
                    item["ErrorStatus"])
    return None


def record_subscribe_receipt(session, openid: str, msgid: str, code: str, status: str,
                             at: datetime) -> Delivery | None:
    """Store WeChat's final word on a subscription notice; an error code marks it failed.

    The notice is found by its MsgID when bizsend gave one back, else it is the oldest notice
    to this user still waiting for its word (bizsend usually answers without a msgid)."""
    delivery = None
    if msgid:
        delivery = session.scalar(select(Delivery).where(Delivery.wx_msg_id == msgid)
                                  .order_by(Delivery.id.desc()))
    if delivery is None:
        delivery = session.scalar(select(Delivery).where(
            Delivery.openid == openid, Delivery.channel == "subscribe",
            Delivery.status == "sent", Delivery.receipt.is_(None),
            Delivery.wx_msg_id.is_(None)).order_by(Delivery.id))
    if delivery is None:
        logger.warning("subscription notice receipt for %s (msgid %s, %s %s) matches no "
                       "delivery", openid, msgid or "-", code, status)
        return None
    failed = code not in ("", "0")
    word = status or ("success" if not failed else f"error {code}")
    delivery.receipt, delivery.receipt_at = word[:64], at
    if failed and delivery.status == "sent":
        delivery.status = "failed"
        delivery.last_error = f"WeChat reported {code} {status} after accepting the " \
                              "subscription notice"
    return delivery
