"""push(): write a Delivery row inside the caller's transaction; dispatch after commit."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Delivery

logger = logging.getLogger(__name__)


class Outbox:
    """Creates deliveries; the dispatcher sends them once their transaction has committed."""

    def __init__(self, render, dispatcher):
        self.render = render
        self.dispatcher = dispatcher

    def push(self, session: Session, openid: str, template: str, values: dict, *,
             campaign: str | None = None, kind: str = "reply", now: datetime | None = None,
             not_before: datetime | None = None) -> Delivery | None:
        """Add one Delivery; None when (campaign, openid) already has one (idempotent jobs)."""
        campaign = campaign or f"adhoc:{uuid.uuid4().hex}"
        body = self.render(template, **values)
        if session.scalar(select(Delivery.id).where(Delivery.campaign == campaign,
                                                     Delivery.openid == openid)):
            return None
        delivery = Delivery(campaign=campaign, openid=openid, template=template, body=body,
                            kind=kind, not_before=not_before)
        try:
            with session.begin_nested():
                session.add(delivery)
        except IntegrityError:
            logger.info("delivery %s -> %s already exists (concurrent push)", campaign, openid)
            return None
        return delivery

    def after_commit(self, deliveries) -> None:
        """Hand committed deliveries to the dispatcher."""
        ids = [d.id for d in deliveries if d is not None and d.id is not None]
        if ids:
            self.dispatcher.enqueue(ids)
