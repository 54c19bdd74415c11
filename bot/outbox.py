"""push(): write a Delivery row inside the caller's transaction; dispatch after commit."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.channel import held_until
from bot.delivery import ENQUEUE_GRACE_SECONDS
from bot.notices import facts_of
from models import Delivery, utcnow

logger = logging.getLogger(__name__)

KINDS = ("reply", "scheduled", "bulk")


class Outbox:
    """Creates deliveries; the dispatcher sends them once their transaction has committed."""

    def __init__(self, render, dispatcher, settings):
        self.render = render
        self.dispatcher = dispatcher
        self.settings = settings

    def push(self, session: Session, openid: str, template: str, values: dict, *,
             campaign: str | None = None, kind: str = "reply", now: datetime | None = None,
             not_before: datetime | None = None) -> Delivery | None:
        """Add one Delivery; None when (campaign, openid) already has one (idempotent jobs).

        Scheduled and bulk pushes made inside quiet hours wait for the window's end
        (`not_before`); replies to a user's own message are never held.
        """
        if kind not in KINDS:
            raise ValueError(f"push kind must be one of {KINDS}, got {kind!r}")
        campaign = campaign or f"adhoc:{uuid.uuid4().hex}"
        body = self.render(template, **values)
        if session.scalar(select(Delivery.id).where(Delivery.campaign == campaign,
                                                     Delivery.openid == openid)):
            return None
        push_kind, facts = self._facts(template, values, body, now)
        delivery = Delivery(campaign=campaign, openid=openid, template=template, body=body,
                            push_kind=push_kind, facts=facts, kind=kind,
                            not_before=self._not_before(kind, now, not_before),
                            lease_until=self._lease())
        try:
            with session.begin_nested():
                session.add(delivery)
        except IntegrityError:
            logger.info("delivery %s -> %s already exists (concurrent push)", campaign, openid)
            return None
        return delivery

    def push_many(self, session: Session, openids, template: str, values: dict, *,
                  campaign: str, kind: str = "bulk", now: datetime | None = None,
                  not_before: datetime | None = None) -> list[Delivery]:
        """One body to many recipients: rendered once, one existence query, one batched insert.

        The same rules as push(): one Delivery per (campaign, openid), quiet hours, lease.
        Made for fan-outs of thousands (a broadcast), where push() per recipient takes seconds.
        """
        if kind not in KINDS:
            raise ValueError(f"push kind must be one of {KINDS}, got {kind!r}")
        body = self.render(template, **values)
        push_kind, facts = self._facts(template, values, body, now)
        existing = set(session.scalars(select(Delivery.openid)
                                       .where(Delivery.campaign == campaign)))
        hold, lease = self._not_before(kind, now, not_before), self._lease()
        rows = [Delivery(campaign=campaign, openid=openid, template=template, body=body,
                         push_kind=push_kind, facts=facts, kind=kind, not_before=hold,
                         lease_until=lease)
                for openid in dict.fromkeys(openids) if openid not in existing]
        session.add_all(rows)
        session.flush()
        return rows

    def _facts(self, template: str, values: dict, body: str, now: datetime | None):
        """The push's kind and named facts, for a template or subscription notice."""
        local = (now or utcnow()).astimezone(self.settings.zone)
        return facts_of(template, values, body, local)

    def _not_before(self, kind: str, now: datetime | None, asked: datetime | None):
        """The later of the caller's not_before and the end of quiet hours (if they apply)."""
        hold = held_until(kind, now or utcnow(), self.settings)
        candidates = [t for t in (asked, hold) if t is not None]
        return max(candidates) if candidates else None

    def _lease(self) -> datetime:
        # For a few seconds only the dispatcher's own hand-off delivers this row; after them
        # the sweeper queues it again unless the queue still carries it or a worker holds it
        # (Redis was unreachable, or the process died between commit and hand-off). The lease
        # that bounds a worker's hold starts when it takes the row, not here.
        return utcnow() + timedelta(seconds=ENQUEUE_GRACE_SECONDS)

    def after_commit(self, deliveries) -> None:
        """Hand committed deliveries that are due now to the dispatcher (the rest wait)."""
        now = utcnow()
        ids = [d.id for d in deliveries if d is not None and d.id is not None
               and (d.not_before is None or d.not_before <= now)]
        if ids:
            self.dispatcher.enqueue(ids)

    def cancel(self, session: Session, campaign: str) -> int:
        """Stop the part of a campaign not yet sent (e.g. `撤回群发`); returns how many."""
        return session.execute(update(Delivery).where(
            Delivery.campaign == campaign, Delivery.status == "pending").values(
            status="cancelled", lease_until=None)).rowcount
