"""People rules without chat: binding checks and locks, action log, staff invites, groups."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from bot.text import mask_name
from models import utcnow
from models.groups import BroadcastGroup, GroupMember
from models.people import (ActionLog, BindAttempt, Binding, Cadre, HelpRequest, Staff,
                           StaffInvite)

logger = logging.getLogger(__name__)

MAX_FAILURES = 3
LOCK_FOR = timedelta(hours=1)
INVITE_VALID = timedelta(days=7)
HELP_CONTINUES = timedelta(hours=24)  # a follow-up 人工 within this goes to the same staff
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 8
STAFF_ROLES = ("staff", "supervisor")


# ---- action log ----------------------------------------------------------------------------
def record_action(session: Session, action: str, ctx=None, *, openid: str | None = None,
                  cadre_id: int | None = None, on_behalf: bool | None = None,
                  at: datetime | None = None) -> ActionLog:
    """Log who did `action` for which cadre; values default to ctx's user, cadre and clock."""
    if ctx is not None:
        openid = openid or ctx.openid
        if cadre_id is None and ctx.cadre is not None:
            cadre_id = ctx.cadre.id
        on_behalf = ctx.on_behalf if on_behalf is None else on_behalf
        at = at or ctx.now
    entry = ActionLog(openid=openid, cadre_id=cadre_id, action=action,
                      on_behalf=bool(on_behalf), at=at or utcnow())
    session.add(entry)
    return entry


# ---- binding -------------------------------------------------------------------------------
def binding_of(session: Session, openid: str) -> Binding | None:
    """The openid's binding (own first), or None."""
    return session.scalar(select(Binding).where(Binding.openid == openid)
                          .order_by(Binding.relation.desc(), Binding.id))


def locked_until(session: Session, openid: str, now: datetime) -> datetime | None:
    """When the openid's binding lock ends, or None when it may try."""
    attempt = session.scalar(select(BindAttempt).where(BindAttempt.openid == openid))
    if attempt and attempt.locked_until and attempt.locked_until > now:
        return attempt.locked_until
    return None


def record_failure(session: Session, openid: str, now: datetime) -> int:
    """Count a wrong answer; the tries left (0 means now locked for an hour)."""
    attempt = session.scalar(select(BindAttempt).where(BindAttempt.openid == openid))
    if attempt is None:
        attempt = BindAttempt(openid=openid, failures=0)
        session.add(attempt)
    if attempt.locked_until and attempt.locked_until <= now:
        attempt.locked_until, attempt.failures = None, 0
    attempt.failures += 1
    left = MAX_FAILURES - attempt.failures
    if left <= 0:
        attempt.locked_until, attempt.failures, left = now + LOCK_FOR, 0, 0
        logger.warning("[%s] binding locked until %s after %s wrong tries", openid,
                       attempt.locked_until.isoformat(), MAX_FAILURES)
    session.flush()
    return left


def clear_failures(session: Session, openid: str) -> None:
    """Forget wrong answers after a successful binding."""
    session.execute(delete(BindAttempt).where(BindAttempt.openid == openid))


def find_cadre(session: Session, name: str, last4: str) -> list[Cadre]:
    """Active cadres with this exact name whose phone ends in last4 (homonyms told apart)."""
    rows = session.scalars(select(Cadre).where(Cadre.name == name, Cadre.active.is_(True))
                           .order_by(Cadre.id)).all()
    return [c for c in rows if c.phone.endswith(last4)]


def self_binding_of_cadre(session: Session, cadre_id: int) -> Binding | None:
    """The cadre's own binding, if some openid already holds it."""
    return session.scalar(select(Binding).where(Binding.cadre_id == cadre_id,
                                                Binding.relation == "self"))


def bind(session: Session, openid: str, cadre: Cadre, relation: str,
         now: datetime) -> Binding:
    """Bind openid to cadre as `self` or `family`, and log it."""
    binding = Binding(openid=openid, cadre_id=cadre.id, relation=relation, created_at=now)
    session.add(binding)
    clear_failures(session, openid)
    record_action(session, f"bind.{relation}", openid=openid, cadre_id=cadre.id,
                  on_behalf=relation == "family", at=now)
    session.flush()
    logger.info("[%s] bound as %s to cadre %s (%s)", openid, relation, cadre.id,
                mask_name(cadre.name))
    return binding


def unbind(session: Session, binding: Binding, now: datetime) -> None:
    """Remove one binding, and log it."""
    record_action(session, f"unbind.{binding.relation}", openid=binding.openid,
                  cadre_id=binding.cadre_id, on_behalf=binding.relation == "family", at=now)
    logger.info("[%s] unbound (%s) from cadre %s", binding.openid, binding.relation,
                binding.cadre_id)
    session.delete(binding)
    session.flush()


def unbind_cadre(session: Session, cadre_id: int, relation: str, now: datetime) -> int:
    """Remove a cadre's `self` (or `family`) bindings, each logged; how many there were."""
    rows = session.scalars(select(Binding).where(Binding.cadre_id == cadre_id,
                                                 Binding.relation == relation)).all()
    for binding in rows:
        unbind(session, binding, now)
    return len(rows)


# ---- staff ---------------------------------------------------------------------------------
@dataclass
class Redeemed:
    """The outcome of `工作人员 CODE`: the staff row, or why the code was refused."""

    staff: Staff | None = None
    refusal: str | None = None  # unknown | used | expired


def new_code() -> str:
    """A random, easy-to-type invite code."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create_invite(session: Session, name: str, role: str, now: datetime) -> StaffInvite:
    """A one-time invite valid for seven days."""
    if role not in STAFF_ROLES:
        raise ValueError(f"role must be one of {STAFF_ROLES}")
    code = new_code()
    while session.scalar(select(StaffInvite.id).where(StaffInvite.code == code)):
        code = new_code()
    invite = StaffInvite(code=code, name=name, role=role, expires_at=now + INVITE_VALID,
                         created_at=now)
    session.add(invite)
    session.flush()
    return invite


def redeem(session: Session, openid: str, code: str, now: datetime) -> Redeemed:
    """Turn openid into staff with the invite's name and role, once, before it expires."""
    invite = session.scalar(select(StaffInvite).where(StaffInvite.code == code.upper())
                            .with_for_update())
    if invite is None:
        return Redeemed(refusal="unknown")
    if invite.used_at is not None:
        return Redeemed(refusal="used")
    if invite.expires_at <= now:
        return Redeemed(refusal="expired")
    staff = session.scalar(select(Staff).where(Staff.openid == openid))
    if staff is None:
        staff = Staff(openid=openid)
        session.add(staff)
    staff.name, staff.role, staff.active = invite.name, invite.role, True
    invite.used_at, invite.used_by = now, openid
    session.flush()
    logger.info("[%s] became %s %s (invite %s)", openid, invite.role, mask_name(invite.name),
                invite.id)
    return Redeemed(staff=staff)


def staff_of(session: Session, openid: str) -> Staff | None:
    """The active staff row of an openid."""
    return session.scalar(select(Staff).where(Staff.openid == openid, Staff.active.is_(True)))


def remove_staff(session: Session, name: str) -> int:
    """Deactivate every active staff member with this name; how many were."""
    rows = session.scalars(select(Staff).where(Staff.name == name, Staff.active.is_(True))).all()
    for staff in rows:
        staff.active, staff.on_duty = False, False
    return len(rows)


# ---- 人工 (asking for a person) ---------------------------------------------------------------
def open_help(session: Session, openid: str, cadre_id: int | None, on_behalf: bool,
              text: str | None, now: datetime) -> tuple[HelpRequest, Staff | None]:
    """Record a 人工 request; also the staff member answering this user's last one, if recent."""
    last = session.scalar(select(HelpRequest).where(
        HelpRequest.openid == openid, HelpRequest.staff_id.is_not(None),
        HelpRequest.answered_at >= now - HELP_CONTINUES).order_by(HelpRequest.id.desc()))
    owner = session.get(Staff, last.staff_id) if last else None
    if owner is not None and not (owner.active and owner.openid):
        owner = None
    request = HelpRequest(openid=openid, cadre_id=cadre_id, on_behalf=on_behalf,
                          text=(text or None), asked_at=now,
                          staff_id=owner.id if owner else None)
    session.add(request)
    session.flush()
    return request, owner


@dataclass
class Answered:
    """What `答复 N` did: the request, and who had answered it before (if someone else)."""

    request: HelpRequest | None
    earlier: str | None = None


def answer_help(session: Session, number: int, staff: Staff, now: datetime) -> Answered:
    """Mark request `number` answered by `staff` (the request row is locked while we do)."""
    request = session.get(HelpRequest, number, with_for_update=True)
    if request is None:
        return Answered(None)
    earlier = None
    if request.answers and request.staff_id not in (None, staff.id):
        previous = session.get(Staff, request.staff_id)
        earlier = previous.name if previous else None
    request.staff_id, request.answered_at = staff.id, now
    request.answers += 1
    return Answered(request, earlier)


# ---- groups --------------------------------------------------------------------------------
def cadres_by_phone(session: Session, phones) -> tuple[list[Cadre], list[str]]:
    """(cadres found, phones not in the roster)."""
    found, missing = [], []
    for phone in phones:
        cadre = session.scalar(select(Cadre).where(Cadre.phone == phone.strip()))
        (found.append(cadre) if cadre else missing.append(phone))
    return found, missing


def add_members(session: Session, group: BroadcastGroup, cadres, admin: bool) -> int:
    """Add cadres to a group (admins stay admins; `admin` promotes); how many were new."""
    added = 0
    for cadre in cadres:
        member = session.scalar(select(GroupMember).where(GroupMember.group_id == group.id,
                                                          GroupMember.cadre_id == cadre.id))
        if member is None:
            member = GroupMember(group_id=group.id, cadre_id=cadre.id, is_admin=False)
            session.add(member)
            added += 1
        member.is_admin = member.is_admin or admin
    session.flush()
    return added


def is_group_admin(session: Session, openid: str) -> bool:
    """Whether openid is bound (as self) to a cadre who administers any group."""
    return bool(session.scalar(select(exists().where(
        Binding.openid == openid, Binding.relation == "self",
        GroupMember.cadre_id == Binding.cadre_id, GroupMember.is_admin.is_(True)))))
