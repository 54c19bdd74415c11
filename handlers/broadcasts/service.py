"""Broadcast rules without chat: whose groups, who receives, sending, history, withdrawal."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot import errors
from bot.channel import held_until
from models import Binding, Cadre, Delivery, Follower
from models.broadcasts import Broadcast
from models.groups import BroadcastGroup, GroupMember

logger = logging.getLogger(__name__)

TEMPLATE = "broadcasts/notice"
KIND = "bulk"
MAX_CONTENT = 600     # characters: a notice must still fit one chat message (2048 bytes)
HISTORY = 10
NOTICES = 10
# Delivery statuses as an admin reads them in 群发记录.
STATUS_GROUPS = {"sent": "delivered", "sandbox": "delivered", "pending": "pending",
                 "sending": "pending", "failed": "failed", "undeliverable": "failed",
                 "cancelled": "cancelled"}


class Refusal(errors.Refusal):
    """Why a broadcast action cannot be done, as a template code plus values."""

    template = "broadcasts/refused"


@dataclass
class Counts:
    """A broadcast's deliveries by what they mean to the sender."""

    delivered: int = 0
    pending: int = 0
    failed: int = 0
    cancelled: int = 0
    sending: int = 0   # in flight: counted in `pending` too, but no longer stoppable

    @property
    def total(self) -> int:
        """Every delivery of the broadcast."""
        return self.delivered + self.pending + self.failed + self.cancelled


@dataclass
class Sent:
    """The outcome of sending: the broadcast and the deliveries to hand over after commit."""

    broadcast: Broadcast
    deliveries: list = field(default_factory=list)


# ---- groups and recipients -----------------------------------------------------------------
def admin_groups(session: Session, openid: str) -> list[BroadcastGroup]:
    """Groups whose admin is the cadre this openid is bound to as themselves, by name."""
    return list(session.scalars(
        select(BroadcastGroup)
        .join(GroupMember, GroupMember.group_id == BroadcastGroup.id)
        .join(Binding, Binding.cadre_id == GroupMember.cadre_id)
        .where(Binding.openid == openid, Binding.relation == "self",
               GroupMember.is_admin.is_(True))
        .order_by(BroadcastGroup.name, BroadcastGroup.id).distinct()))


def is_admin_of(session: Session, openid: str, group_id: int) -> bool:
    """Whether this openid may broadcast to the group."""
    return any(g.id == group_id for g in admin_groups(session, openid))


def recipients(session: Session, group_id: int) -> list[str]:
    """Openids of the group's active cadres and their bound family, still following, once each."""
    rows = session.execute(
        select(Binding.openid)
        .join(GroupMember, GroupMember.cadre_id == Binding.cadre_id)
        .join(Cadre, Cadre.id == Binding.cadre_id)
        .outerjoin(Follower, Follower.openid == Binding.openid)
        .where(GroupMember.group_id == group_id, Cadre.to_be_pushed(),
               or_(Follower.subscribed.is_(None), Follower.subscribed.is_(True)))
        .order_by(Binding.relation.desc(), Binding.id)).scalars()
    return list(dict.fromkeys(rows))


# ---- sending ---------------------------------------------------------------------------------
def goes_out_at(settings, now: datetime) -> datetime | None:
    """When a broadcast made at `now` will go out, if not at once (the end of quiet hours)."""
    return held_until(KIND, now, settings)


def send(session: Session, outbox, openid: str, group_id: int, content: str, via: str,
         now: datetime) -> Sent:
    """Record a broadcast and write one bulk Delivery per recipient, in the caller's transaction."""
    group = _admin_group(session, openid, group_id)
    people = recipients(session, group.id)
    if not people:
        raise Refusal("nobody", group=group.name)
    sender = session.scalar(select(Binding).where(Binding.openid == openid,
                                                  Binding.relation == "self"))
    broadcast = Broadcast(group_id=group.id, sender_openid=openid,
                          sender_cadre_id=sender.cadre_id if sender else None,
                          content=content[:MAX_CONTENT], via=via, recipients=len(people),
                          not_before=goes_out_at(outbox.settings, now), created_at=now)
    session.add(broadcast)
    session.flush()
    deliveries = outbox.push_many(session, people, TEMPLATE,
                                  {"group": group.name, "content": broadcast.content,
                                   "sender": sender.cadre.name if sender else None},
                                  campaign=broadcast.campaign, kind=KIND, now=now)
    logger.info("[%s] broadcast %s to group %s: %d recipients%s", openid, broadcast.id,
                group.id, len(deliveries),
                f", held until {broadcast.not_before:%H:%M}" if broadcast.not_before else "")
    return Sent(broadcast, deliveries)


def _admin_group(session: Session, openid: str, group_id: int) -> BroadcastGroup:
    group = session.get(BroadcastGroup, group_id)
    if group is None or not is_admin_of(session, openid, group_id):
        logger.warning("[%s] refused: not an admin of group %s", openid, group_id)
        raise Refusal("not_admin", group=group.name if group else None)
    return group


# ---- history and withdrawal -------------------------------------------------------------------
def counts(session: Session, broadcast_ids: list[int]) -> dict[int, Counts]:
    """Delivery counts per broadcast, in one query."""
    found = {i: Counts() for i in broadcast_ids}
    if not broadcast_ids:
        return found
    by_campaign = {f"broadcast:{i}": i for i in broadcast_ids}
    rows = session.execute(select(Delivery.campaign, Delivery.status, func.count())
                           .where(Delivery.campaign.in_(by_campaign))
                           .group_by(Delivery.campaign, Delivery.status))
    for campaign, status, n in rows:
        c = found[by_campaign[campaign]]
        what = STATUS_GROUPS.get(status, "failed")
        setattr(c, what, getattr(c, what) + n)
        if status == "sending":
            c.sending += n
    return found


def history(session: Session, openid: str, limit: int = HISTORY) -> list[Broadcast]:
    """Newest first: what this openid sent, and what was sent to the groups it administers."""
    groups = [g.id for g in admin_groups(session, openid)]
    return list(session.scalars(
        select(Broadcast).where(or_(Broadcast.sender_openid == openid,
                                    Broadcast.group_id.in_(groups)))
        .order_by(Broadcast.id.desc()).limit(limit)))


def revoke(session: Session, cancel: Callable, openid: str, number: int,
           now: datetime) -> tuple[Broadcast, int, Counts]:
    """Stop the pending part of broadcast `number`; (broadcast, how many stopped, counts after).

    Only its sender or a current admin of its group may; `cancel(session, campaign)` is
    Outbox.cancel.
    """
    broadcast = session.get(Broadcast, number)
    if broadcast is None:
        raise Refusal("not_found", n=number)
    if broadcast.sender_openid != openid and not is_admin_of(session, openid,
                                                             broadcast.group_id):
        logger.warning("[%s] refused: may not withdraw broadcast %s", openid, number)
        raise Refusal("not_yours", n=number)
    stopped = cancel(session, broadcast.campaign)
    if stopped:  # withdrawn: kept, but no longer listed under 通知
        if broadcast.revoked_at is None:
            broadcast.revoked_at, broadcast.revoked_by = now, openid
        broadcast.revoked_count += stopped
    session.flush()
    logger.info("[%s] withdrew broadcast %s: %d stopped", openid, number, stopped)
    return broadcast, stopped, counts(session, [broadcast.id])[broadcast.id]


# ---- notices ---------------------------------------------------------------------------------
def notices_for(session: Session, openid: str, now: datetime,
                limit: int = NOTICES) -> list[Broadcast]:
    """Broadcasts to the groups of every cadre this openid is bound to, newest first.

    Withdrawn ones and ones still held for quiet hours are left out.
    """
    cadres = select(Binding.cadre_id).where(Binding.openid == openid)
    groups = select(GroupMember.group_id).where(GroupMember.cadre_id.in_(cadres))
    return list(session.scalars(
        select(Broadcast).where(Broadcast.group_id.in_(groups), Broadcast.revoked_at.is_(None),
                                or_(Broadcast.not_before.is_(None),
                                    Broadcast.not_before <= now))
        .order_by(Broadcast.id.desc()).limit(limit)))
