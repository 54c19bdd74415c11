"""People rules without chat: binding checks and locks, action log, staff invites, groups."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot import media
from bot.text import mask_name
from models import utcnow
from models.groups import BroadcastGroup, GroupMember
from models.issues import TicketAttachment
from models.people import on_duty_openids, recipients_of
from models.people import (ActionLog, BindAttempt, BindCode, BindGuard, Binding, BindingNotice,
                           Cadre, HelpRequest, Staff, StaffInvite)

logger = logging.getLogger(__name__)

MAX_FAILURES = 3
LOCK_FOR = timedelta(hours=1)
FAILURES_FORGOTTEN = timedelta(days=1)  # an old typo does not count toward today's lock
CADRE_DAILY_FAILURES = 10  # wrong tries naming one cadre, from any account, in a local day
UNDO_WITHIN = timedelta(days=7)  # how long `不是我` can undo an announced binding
BIND_CODE_VALID = timedelta(days=30)  # WeChat's longest temporary QR code
BIND_SCENE = "bind_"  # the QR scene of a personal binding code: bind_<token>
INVITE_VALID = timedelta(days=7)
HELP_CONTINUES = timedelta(hours=24)  # a follow-up 人工 within this goes to the same staff
HELP_LISTENS = timedelta(minutes=30)  # after 人工, what the user says next joins the request
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
    """Count a wrong answer; the tries left (0 means now locked for an hour).

    A successful binding does not reset the count (an attacker would bind a cadre it knows
    between guesses); only the lock's end or a day without wrong answers does.
    """
    attempt = session.scalar(select(BindAttempt).where(BindAttempt.openid == openid))
    if attempt is None:
        attempt = BindAttempt(openid=openid, failures=0, updated_at=now)
        session.add(attempt)
    if (attempt.locked_until and attempt.locked_until <= now) or \
            (attempt.updated_at and attempt.updated_at < now - FAILURES_FORGOTTEN):
        attempt.locked_until, attempt.failures = None, 0
    attempt.failures += 1
    attempt.updated_at = now
    left = MAX_FAILURES - attempt.failures
    if left <= 0:
        attempt.locked_until, attempt.failures, left = now + LOCK_FOR, 0, 0
        logger.warning("[%s] binding locked until %s after %s wrong tries", openid,
                       attempt.locked_until.isoformat(), MAX_FAILURES)
    session.flush()
    return left


def named_cadres(session: Session, name: str) -> list[Cadre]:
    """Active cadres with exactly this name (a wrong answer naming them counts against each)."""
    return list(session.scalars(select(Cadre).where(Cadre.name == name,
                                                    Cadre.active.is_(True)).order_by(Cadre.id)))


def binding_paused(session: Session, cadre_ids) -> bool:
    """Whether binding to any of these cadres is paused after too many wrong answers."""
    ids = list(cadre_ids)
    return bool(ids) and bool(session.scalar(select(exists().where(
        BindGuard.cadre_id.in_(ids), BindGuard.paused_at.is_not(None)))))


def _guard_row(session: Session, cadre_id: int, day: date) -> BindGuard:
    """The cadre's guard row, locked; created on first use (a concurrent creator may win)."""
    query = select(BindGuard).where(BindGuard.cadre_id == cadre_id).with_for_update()
    guard = session.scalar(query)
    if guard is None:
        try:
            with session.begin_nested():
                session.add(BindGuard(cadre_id=cadre_id, day=day, failures=0))
        except IntegrityError:
            pass
        guard = session.scalar(query)
    return guard


def count_cadre_failure(session: Session, cadres, day: date, now: datetime) -> list[Cadre]:
    """Count a wrong answer against each named cadre; those whose binding pauses now."""
    paused = []
    for cadre in cadres:
        guard = _guard_row(session, cadre.id, day)
        if guard.day != day:
            guard.day, guard.failures = day, 0
        guard.failures += 1
        if guard.paused_at is None and guard.failures >= CADRE_DAILY_FAILURES:
            guard.paused_at = now
            paused.append(cadre)
            logger.warning("binding to cadre %s paused after %s wrong answers today", cadre.id,
                           guard.failures)
    session.flush()
    return paused


def lift_pause(session: Session, cadre_id: int) -> bool:
    """Let binding to this cadre go on (staff decided); whether it was paused."""
    guard = session.scalar(select(BindGuard).where(BindGuard.cadre_id == cadre_id)
                           .with_for_update())
    if guard is None or guard.paused_at is None:
        return False
    guard.paused_at, guard.failures = None, 0
    logger.info("binding pause lifted for cadre %s", cadre_id)
    return True


def self_binding_of_cadre(session: Session, cadre_id: int) -> Binding | None:
    """The cadre's own binding, if some openid already holds it."""
    return session.scalar(select(Binding).where(Binding.cadre_id == cadre_id,
                                                Binding.relation == "self"))


def bind(session: Session, openid: str, cadre: Cadre, relation: str,
         now: datetime) -> Binding | None:
    """Bind openid to cadre as `self` or `family`, and log it; None when the cadre's own
    binding was taken meanwhile (the database rule decides a race)."""
    binding = Binding(openid=openid, cadre_id=cadre.id, relation=relation, created_at=now)
    try:
        with session.begin_nested():
            session.add(binding)
    except IntegrityError:
        logger.info("[%s] %s binding to cadre %s lost to another account", openid, relation,
                    cadre.id)
        return None
    record_action(session, f"bind.{relation}", openid=openid, cadre_id=cadre.id,
                  on_behalf=relation == "family", at=now)
    session.flush()
    logger.info("[%s] bound as %s to cadre %s (%s)", openid, relation, cadre.id,
                mask_name(cadre.name))
    return binding


def announce(session: Session, binding: Binding, now: datetime) -> list[str]:
    """Record a notice to each of the cadre's other accounts; their openids."""
    others = [o for o in recipients_of(session, binding.cadre_id) if o != binding.openid]
    for openid in others:
        session.add(BindingNotice(openid=openid, binding_id=binding.id,
                                  cadre_id=binding.cadre_id, bound_openid=binding.openid,
                                  relation=binding.relation, created_at=now))
    session.flush()
    return others


def undo_announced(session: Session, openid: str, now: datetime) -> BindingNotice | None:
    """`不是我`: remove the binding last announced to openid (within a week), once."""
    notice = session.scalar(select(BindingNotice).where(
        BindingNotice.openid == openid, BindingNotice.undone_at.is_(None),
        BindingNotice.created_at >= now - UNDO_WITHIN).order_by(BindingNotice.id.desc())
        .with_for_update())
    if notice is None:
        return None
    binding = session.get(Binding, notice.binding_id)
    if binding is None:
        return None
    notice.undone_at = now
    record_action(session, "bind.undone", openid=openid, cadre_id=notice.cadre_id, at=now)
    unbind(session, binding, now)
    logger.warning("[%s] undid the %s binding of %s to cadre %s", openid, notice.relation,
                   notice.bound_openid, notice.cadre_id)
    return notice


def issue_bind_code(session: Session, cadre: Cadre, now: datetime) -> BindCode:
    """A fresh one-use code for a cadre's personal QR code."""
    code = BindCode(token=secrets.token_hex(12), cadre_id=cadre.id, created_at=now,
                    expires_at=now + BIND_CODE_VALID)
    session.add(code)
    session.flush()
    return code


def usable_bind_code(session: Session, token: str, now: datetime) -> BindCode | None:
    """The code behind a scanned QR code, locked, when it is unused and unexpired."""
    code = session.scalar(select(BindCode).where(BindCode.token == token).with_for_update())
    if code is None or code.used_at is not None or code.expires_at <= now:
        return None
    return code


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
              text: str | None, now: datetime) -> tuple[HelpRequest, Staff | None, bool]:
    """Record a 人工 request, or join the user's one still unanswered (one open request per
    user); also the staff member answering this user's last one, if recent.
    Returns (request, that staff member, whether it joined an open request)."""
    open_one = session.scalar(select(HelpRequest).where(
        HelpRequest.openid == openid, HelpRequest.answers == 0).order_by(HelpRequest.id.desc())
        .with_for_update())
    if open_one is not None:
        join_help(open_one, text, now)
        return open_one, None, True
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
    return request, owner, False


def join_help(request: HelpRequest, text: str | None, now: datetime) -> None:
    """Add what the user said next to their request (kept whole, one line each)."""
    if text:
        request.text = f"{request.text}\n{text}" if request.text else text
        request.text = request.text[-4000:]


def keep_recording(work, request: HelpRequest, media_id: str | None) -> TicketAttachment:
    """Keep the recording of a voice message that joined this request: downloaded after the
    commit and shown to staff in the console, like a ticket's (bot/media.py)."""
    item = TicketAttachment(help_request_id=request.id, kind="voice",
                            media_id=(media_id or "")[:128] or None, created_at=work.now,
                            sender_openid=request.openid)
    work.db.add(item)
    media.keep(work, [item])
    logger.info("help request %s: a recording to be kept", request.id)
    return item


def only_unanswered_help(session: Session) -> int | None:
    """The number of the one 人工 request nobody has answered yet; None when there are
    none or several (then staff must say which)."""
    waiting = session.scalars(select(HelpRequest.id).where(HelpRequest.answers == 0)
                              .order_by(HelpRequest.id).limit(2)).all()
    return waiting[0] if len(waiting) == 1 else None


def help_requests_to_hear(session: Session, now: datetime,
                          limit: int | None = None) -> list[HelpRequest]:
    """For the console: the open 人工 requests, and answered ones the user sent a recording
    to after the last answer (recent), oldest first: staff were told it waits there. Their
    cadre and recordings come loaded (every line shows both: no query per line)."""
    newer = exists().where(TicketAttachment.help_request_id == HelpRequest.id,
                           TicketAttachment.created_at > HelpRequest.answered_at,
                           TicketAttachment.created_at >= now - media.KEPT_BY_WECHAT)
    return list(session.scalars(select(HelpRequest).where(
        or_(HelpRequest.answers == 0, and_(HelpRequest.answers > 0, newer)))
        .options(selectinload(HelpRequest.attachments), selectinload(HelpRequest.cadre))
        .order_by(HelpRequest.id).limit(limit)))


def help_staff(session: Session, request: HelpRequest | None, staff_id: int | None) -> list[str]:
    """Who hears the user's next words: the staff member who wrote, and the on-duty staff
    too when that person is off duty (or there is none)."""
    writer = session.get(Staff, staff_id) if staff_id else None
    if writer is not None and writer.active and writer.openid and writer.on_duty:
        return [writer.openid]
    duty = on_duty_openids(session)
    if writer is not None and writer.active and writer.openid and writer.openid not in duty:
        duty = [writer.openid, *duty]
    return duty


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


def group_admin_clause(openid: str):
    """The condition: openid is bound (as self) to a cadre who administers any group."""
    return exists().where(Binding.openid == openid, Binding.relation == "self",
                          GroupMember.cadre_id == Binding.cadre_id,
                          GroupMember.is_admin.is_(True))

