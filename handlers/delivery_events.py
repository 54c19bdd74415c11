"""WeChat's delivery reports: TEMPLATESENDJOBFINISH updates the delivery; MASSSENDJOBFINISH
is logged."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from bot.router import Handlers
from models import Delivery

logger = logging.getLogger(__name__)
handlers = Handlers("delivery-events")


def record_template_receipt(session, msgid: str, status: str, at: datetime) -> Delivery | None:
    """Store WeChat's final status of a template message; a failure marks the delivery failed."""
    delivery = session.scalar(select(Delivery).where(Delivery.wx_msg_id == msgid)
                              .order_by(Delivery.id.desc()))
    if delivery is None:
        logger.warning("template receipt for unknown msgid %s (%s)", msgid, status)
        return None
    delivery.receipt, delivery.receipt_at = (status or "")[:64], at
    if status and status != "success" and delivery.status == "sent":
        delivery.status = "failed"
        delivery.last_error = f"WeChat reported {status} after accepting the template"
    return delivery


@handlers.event("templatesendjobfinish")
def template_finished(ctx):
    """A template message reached its end: success, blocked by the user, or system failure."""
    delivery = record_template_receipt(ctx.db, str(ctx.message.id), ctx.message.status,
                                       ctx.now)
    if delivery is not None:
        ctx.log("template delivery %s: %s", delivery.id, ctx.message.status)
    return None


@handlers.event("masssendjobfinish")
def mass_finished(ctx):
    """Mass sends are not used for delivery; log WeChat's counts in case one was sent by hand."""
    m = ctx.message
    try:
        counts = (m.sent_count, m.total_count, m.error_count)
    except (TypeError, ValueError):
        logger.warning("mass send %s finished with counts that are not numbers: ignored",
                       m.id)
        return None
    logger.info("mass send %s finished: %s, %s of %s sent, %s errors", m.id, m.status, *counts)
    return None
