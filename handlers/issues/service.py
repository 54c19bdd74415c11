"""Ticket service: every change to a ticket, shared by chat handlers, jobs and the console.

Functions that change a ticket take the unit of work (bot/work.py: a chat message's Ctx, a
job, a console request) and primitives; they write through `work.db` (never commit) and queue
messages with `work.push`, sent after the commit. Queries take a session.
A request that cannot be done as asked raises Refusal, whose code picks the answer.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from bot import errors, media
from bot.context import Actor
from bot.roles import SUPERVISOR
from handlers.issues.policy import load_policy
from handlers.issues.views import ticket_view
from models import Follower, Staff
from models.issues import (ACTIVE_STATES, CLAIMED, OPEN, RESOLVED, StaffFocus, Ticket,
                           TicketAttachment, TicketEvent)
from models.people import ask_rating_of, on_duty_openids, open_threads, recipients_of

logger = logging.getLogger(__name__)
LOW_RATING = 2  # ratings at or below this are brought to the supervisors' attention


class Refusal(errors.Refusal):
    """A request that cannot be done as asked; `code` picks the answer in issues/refused."""

    template = "issues/refused"


Reporter = Actor  # who reports: the cadre, or family acting for them


# ---- staff -------------------------------------------------------------------------------
def staff_of(session, openid: str) -> Staff | None:
    """The active staff member behind an openid."""
    return session.scalar(select(Staff).where(Staff.openid == openid, Staff.active.is_(True)))


def _reachable():
    return select(Staff).where(Staff.active.is_(True), Staff.openid.is_not(None)) \
        .order_by(Staff.id)


def supervisors(session) -> list[Staff]:
    """Active supervisors reachable in chat."""
    return list(session.scalars(_reachable().where(Staff.role == SUPERVISOR)))


def route(session, policy, category: str) -> list[Staff]:
    """The category's on-duty staff, else the shared rule: anyone on duty, else supervisors."""
    duty = list(session.scalars(_reachable().where(Staff.openid.in_(on_duty_openids(session)))))
    cat = policy.category(category)
    named = [s for s in duty if s.on_duty and cat and s.name in cat.staff]
    return named or duty


def handlers_of(session, policy, ticket: Ticket) -> list[Staff]:
    """Staff on a ticket: its assignee when reachable, else whoever it is routed to."""
    a = ticket.assignee
    if a is not None and a.active and a.openid:
        return [a]
    return route(session, policy, ticket.category)


def staff_named(session, name: str) -> Staff:
    """The one active staff member with this name, reachable in chat (else Refusal)."""
    found = list(session.scalars(select(Staff).where(Staff.name == name,
                                                     Staff.active.is_(True))))
    if not found:
        raise Refusal("no_such_staff", who=name)
    if len(found) > 1:
        raise Refusal("ambiguous_staff", who=name)
    if not found[0].openid:
        raise Refusal("staff_not_in_chat", who=found[0].name)
    return found[0]


def parts(work):
    """(session, issue policy, now) of a unit of work."""
    return work.db, work.config(load_policy), work.now


def tell_staff(work, staff: list[Staff], ticket_id: int, template: str, campaign: str,
               **values) -> list[str]:
    """Push a ticket message to staff and make it their focus; returns their names."""
    session, policy, now = parts(work)
    for person in staff:
        work.push(person.openid, template, campaign=campaign, **values)
        set_focus(session, person.id, ticket_id, now)
    return [s.name for s in staff]


# ---- focus (item 6: `接单` / `回复 …` without a number) -----------------------------------
def set_focus(session, staff_id: int, ticket_id: int, now: datetime) -> None:
    """Remember the ticket this staff member was last pushed or worked on."""
    row = session.scalar(select(StaffFocus).where(StaffFocus.staff_id == staff_id))
    if row is not None:
        row.ticket_id, row.at = ticket_id, now
        return
    try:
        with session.begin_nested():
            session.add(StaffFocus(staff_id=staff_id, ticket_id=ticket_id, at=now))
    except IntegrityError:  # a concurrent push created it first
        row = session.scalar(select(StaffFocus).where(StaffFocus.staff_id == staff_id))
        row.ticket_id, row.at = ticket_id, now


def focus_of(session, staff_id: int) -> int | None:
    """The ticket number this staff member is focused on, if any."""
    return session.scalar(select(StaffFocus.ticket_id).where(StaffFocus.staff_id == staff_id))


# ---- reading -----------------------------------------------------------------------------
def get_ticket(session, number: int, *, lock: bool = False) -> Ticket:
    """Ticket `number` (locked for update when asked), else Refusal not_found."""
    ticket = session.get(Ticket, number, with_for_update=lock or None,
                         populate_existing=lock)
    if ticket is None:
        raise Refusal("not_found", n=number)
    return ticket


def reporters_ticket(session, reporter: Reporter, number: int) -> Ticket:
    """A ticket of the reporter's cadre; anyone else's looks like it does not exist."""
    ticket = session.get(Ticket, number)
    if ticket is None or ticket.cadre_id != reporter.cadre_id:
        raise Refusal("not_found_mine", n=number)
    return ticket


def _listing():
    """select(Ticket) with what a list shows loaded up front (no query per line)."""
    return select(Ticket).options(selectinload(Ticket.cadre), selectinload(Ticket.assignee),
                                  selectinload(Ticket.attachments))


def tickets_of_cadre(session, cadre_id: int, limit: int = 10) -> list[Ticket]:
    """A cadre's tickets, newest first."""
    return list(session.scalars(_listing().where(Ticket.cadre_id == cadre_id)
                                .order_by(Ticket.id.desc()).limit(limit)))


def active_tickets(session) -> list[Ticket]:
    """Tickets not yet resolved: urgent first, then oldest first."""
    return list(session.scalars(_listing().where(Ticket.state.in_(ACTIVE_STATES))
                                .order_by(Ticket.urgent.desc(), Ticket.created_at, Ticket.id)))


def first_active_tickets(session, limit: int) -> tuple[list[Ticket], int]:
    """The first `limit` of active_tickets() and how many there are in all: a list that shows
    a few does not load every ticket (and its attachments) of a long backlog; the count is
    asked only when the list is full."""
    rows = list(session.scalars(_listing().where(Ticket.state.in_(ACTIVE_STATES))
                                .order_by(Ticket.urgent.desc(), Ticket.created_at, Ticket.id)
                                .limit(limit)))
    if len(rows) < limit:
        return rows, len(rows)
    return rows, session.scalar(select(func.count()).select_from(Ticket)
                                .where(Ticket.state.in_(ACTIVE_STATES)))


def reporter_side(session, ticket: Ticket) -> list[str]:
    """Who hears back on a ticket: the cadre and bound family still following, the reporter."""
    openids = recipients_of(session, ticket.cadre_id)
    if ticket.reporter_openid not in openids:
        subscribed = session.scalar(select(Follower.subscribed).where(
            Follower.openid == ticket.reporter_openid))
        if subscribed:
            openids.append(ticket.reporter_openid)
    return openids


# ---- writing -----------------------------------------------------------------------------
def add_event(session, ticket: Ticket, kind: str, now: datetime, *, staff: Staff | None = None,
              reporter: Reporter | None = None, text: str | None = None,
              data: dict | None = None) -> TicketEvent:
    """Record one audit event (who, when, what, on whose behalf); no actor means the system."""
    event = TicketEvent(kind=kind, at=now, text=text, data=data, actor_role="system")
    if staff is not None:
        event.actor_role, event.actor_staff_id, event.actor_openid = "staff", staff.id, \
            staff.openid
    elif reporter is not None:
        event.actor_role, event.actor_openid = reporter.role, reporter.openid
        event.on_behalf_cadre_id = reporter.cadre_id if reporter.on_behalf else None
    ticket.events.append(event)
    ticket.updated_at = now
    session.flush()
    return event


def create_ticket(work, reporter: Reporter, draft: dict) -> Ticket:
    """File a ticket from a finished report dialog and tell the staff it is routed to."""
    session, policy, now = parts(work)
    ticket = Ticket(cadre_id=reporter.cadre_id, reporter_openid=reporter.openid,
                    on_behalf=reporter.on_behalf, category=draft["category"],
                    description=draft["description"], urgent=bool(draft["urgent"]),
                    state=OPEN, created_at=now, updated_at=now)
    session.add(ticket)
    for item in draft.get("attachments", []):
        ticket.attachments.append(TicketAttachment(created_at=now,
                                                   sender_openid=reporter.openid, **item))
    session.flush()
    media.keep(work, ticket.attachments)  # photos and voice: downloaded after the commit
    staff = route(session, policy, ticket.category)
    add_event(session, ticket, "created", now, reporter=reporter, text=ticket.description,
              data={"category": ticket.category, "urgent": ticket.urgent,
                    "via": draft.get("via", "text"), "notified": [s.name for s in staff]})
    view = ticket_view(policy, ticket, now)
    tell_staff(work, staff, ticket.id, "issues/staff_new", f"issue:{ticket.id}:new", t=view)
    for openid in reporter_side(session, ticket):
        if openid != reporter.openid:
            work.push(openid, "issues/family_new", campaign=f"issue:{ticket.id}:new-family",
                      t=view)
    logger.info("ticket %s filed by %s (urgent %s), routed to %d staff", ticket.id,
                reporter.openid, ticket.urgent, len(staff))
    return ticket


def add_note(work, reporter: Reporter, number: int, text: str | None,
             attachment: dict | None) -> tuple[Ticket, list[str]]:
    """`补充`: the reporter adds words or a photo/place; the staff on the ticket are told."""
    session, policy, now = parts(work)
    ticket = reporters_ticket(session, reporter, number)
    if attachment:
        ticket.attachments.append(TicketAttachment(created_at=now,
                                                   sender_openid=reporter.openid, **attachment))
        session.flush()
        media.keep(work, ticket.attachments[-1:])
    event = add_event(session, ticket, "note", now, reporter=reporter, text=text,
                      data={"attachment": attachment["kind"]} if attachment else None)
    names = tell_staff(work, handlers_of(session, policy, ticket), ticket.id,
                       "issues/staff_note", f"issue:{ticket.id}:note:{event.id}",
                       t=ticket_view(policy, ticket, now), text=text, attachment=attachment)
    return ticket, names


def _claim_refusal(policy, ticket: Ticket, staff: Staff) -> Refusal:
    if ticket.state == RESOLVED:
        return Refusal("resolved", n=ticket.id)
    if ticket.assignee_id == staff.id:
        return Refusal("already_yours", n=ticket.id)
    return Refusal("taken", n=ticket.id, assignee=ticket.assignee.name,
                   since=ticket.assigned_at.astimezone(policy.zone))


def claim(work, staff: Staff, number: int, *, auto: bool = False) -> Ticket:
    """`接单`: exactly one staff member wins; the database decides (conditional UPDATE)."""
    session, policy, now = parts(work)
    ticket = get_ticket(session, number)
    won = session.execute(
        update(Ticket).where(Ticket.id == number, Ticket.state == OPEN,
                             Ticket.assignee_id.is_(None))
        .values(state=CLAIMED, assignee_id=staff.id, assigned_at=now, updated_at=now,
                assign_round=Ticket.assign_round + 1)
        .execution_options(synchronize_session=False)).rowcount
    session.refresh(ticket)  # this statement's truth, including a rival's committed claim
    if not won:
        raise _claim_refusal(policy, ticket, staff)
    add_event(session, ticket, "claimed", now, staff=staff, data={"auto": True} if auto else None)
    set_focus(session, staff.id, ticket.id, now)
    if not auto:  # an automatic claim comes with a reply or resolution that says more
        work.push(ticket.reporter_openid, "issues/reporter_claimed",
                  campaign=f"issue:{ticket.id}:claimed:{ticket.assign_round}",
                  t=ticket_view(policy, ticket, now))
    logger.info("ticket %s claimed by staff %s", ticket.id, staff.id)
    return ticket


def _take(work, staff: Staff, number: int) -> Ticket:
    """The ticket, locked, if this staff member may act on it (claiming it when open)."""
    session, policy, now = parts(work)
    ticket = get_ticket(session, number, lock=True)
    if ticket.state == RESOLVED:
        raise Refusal("resolved", n=number)
    if ticket.state == OPEN:
        return claim(work, staff, number, auto=True)
    if ticket.assignee_id != staff.id and staff.role != SUPERVISOR:
        raise Refusal("not_assignee", n=number, assignee=ticket.assignee.name)
    set_focus(session, staff.id, ticket.id, now)
    return ticket


def reply(work, staff: Staff, number: int, text: str) -> tuple[Ticket, list[str]]:
    """`回复`: relay the staff member's words to the reporter and the cadre's family."""
    session, policy, now = parts(work)
    if not text:
        raise Refusal("need_text", n=number, verb="回复")
    ticket = _take(work, staff, number)
    recipients = reporter_side(session, ticket)
    event = add_event(session, ticket, "replied", now, staff=staff, text=text,
                      data={"recipients": len(recipients)})
    ticket.last_reply_at = now
    view = ticket_view(policy, ticket, now)
    for openid in recipients:
        work.push(openid, "issues/relay", campaign=f"issue:{ticket.id}:reply:{event.id}",
                  t=view, staff_name=staff.name, text=text)
    open_threads(session, recipients, "ticket", ticket.id, staff.id,
                 now + policy.reply_thread)
    return ticket, recipients


def transfer(work, staff: Staff, number: int, name: str) -> Ticket:
    """`转办`: hand a ticket to a named colleague (assignee, supervisor, or anyone if open)."""
    session, policy, now = parts(work)
    if not name:
        raise Refusal("need_name", n=number)
    ticket = get_ticket(session, number, lock=True)
    if ticket.state == RESOLVED:
        raise Refusal("resolved", n=number)
    if ticket.state == CLAIMED and ticket.assignee_id != staff.id and staff.role != SUPERVISOR:
        raise Refusal("not_assignee", n=number, assignee=ticket.assignee.name)
    target = staff_named(session, name)
    if target.id == ticket.assignee_id:
        raise Refusal("same_assignee", n=number, who=target.name)
    previous = ticket.assignee
    ticket.state, ticket.assignee, ticket.assigned_at = CLAIMED, target, now
    ticket.assign_round += 1
    event = add_event(session, ticket, "transferred", now, staff=staff,
                      data={"from": previous.name if previous else None, "to": target.name})
    _announce_transfer(work, ticket, staff, previous, event)
    return ticket


def _announce_transfer(work, ticket: Ticket, staff: Staff, previous: Staff | None,
                       event: TicketEvent) -> None:
    """The new assignee, the one relieved of it, and the reporter hear of a transfer."""
    session, policy, now = parts(work)
    view, campaign = ticket_view(policy, ticket, now), f"issue:{ticket.id}:transfer:{event.id}"
    if ticket.assignee.id == staff.id:  # a supervisor taking it over needs no message
        set_focus(session, staff.id, ticket.id, now)
    else:
        tell_staff(work, [ticket.assignee], ticket.id, "issues/staff_transfer", campaign,
                   t=view, by=staff.name, to_you=True)
    if previous is not None and previous.id != staff.id and previous.openid:
        work.push(previous.openid, "issues/staff_transfer", campaign=campaign, t=view,
                  by=staff.name, to_you=False)
    work.push(ticket.reporter_openid, "issues/reporter_transfer", campaign=campaign, t=view)


def resolve(work, staff: Staff, number: int, note: str) -> Ticket:
    """`办结`: close with an explanation; everyone hears it, the reporter is asked to rate."""
    session, policy, now = parts(work)
    if not note:
        raise Refusal("need_text", n=number, verb="办结")
    ticket = _take(work, staff, number)
    ticket.state, ticket.resolved_at, ticket.resolution = RESOLVED, now, note
    ticket.rating = ticket.rated_at = None
    event = add_event(session, ticket, "resolved", now, staff=staff, text=note)
    view = ticket_view(policy, ticket, now)
    told = reporter_side(session, ticket)
    for openid in told:
        work.push(openid, "issues/reporter_resolved",
                  campaign=f"issue:{ticket.id}:resolved:{event.id}", t=view,
                  staff_name=staff.name, ask_rating=openid == ticket.reporter_openid)
    open_threads(session, told, "ticket", ticket.id, staff.id, now + policy.reply_thread)
    ask_rating(session, ticket, staff.openid, now)
    return ticket


def reopen(work, staff: Staff, number: int, reason: str) -> Ticket:
    """`重开`: a resolved ticket goes back to its assignee (or whoever reopens it)."""
    session, policy, now = parts(work)
    ticket = get_ticket(session, number, lock=True)
    if ticket.state != RESOLVED:
        raise Refusal("not_resolved", n=number, state=ticket.state)
    previous = ticket.assignee
    target = previous if previous is not None and previous.active and previous.openid \
        else staff
    ticket.state, ticket.assignee, ticket.assigned_at = CLAIMED, target, now
    ticket.assign_round += 1
    ticket.resolved_at = ticket.rating = ticket.rated_at = None
    event = add_event(session, ticket, "reopened", now, staff=staff, text=reason or None,
                      data={"assignee": target.name})
    view, campaign = ticket_view(policy, ticket, now), f"issue:{ticket.id}:reopened:{event.id}"
    if target.id != staff.id:
        tell_staff(work, [target], ticket.id, "issues/staff_reopened", campaign, t=view,
                   by=staff.name, reason=reason)
    set_focus(session, staff.id, ticket.id, now)
    work.push(ticket.reporter_openid, "issues/reporter_reopened", campaign=campaign, t=view)
    drop_rating_question(session, ticket)
    return ticket


def rate(work, reporter: Reporter, number: int | None, score: int) -> Ticket:
    """The reporter's 1–5 rating of a resolved ticket (once per resolution)."""
    session, policy, now = parts(work)
    ticket = reporters_ticket(session, reporter, number) if number is not None \
        else awaiting_rating(session, reporter.cadre_id)
    if ticket is None:
        raise Refusal("nothing_to_rate")
    if ticket.state != RESOLVED:
        raise Refusal("not_resolved_yet", n=ticket.id)
    if ticket.rating is not None:
        raise Refusal("already_rated", n=ticket.id, score=ticket.rating)
    ticket.rating, ticket.rated_at = score, now
    event = add_event(session, ticket, "rated", now, reporter=reporter, data={"score": score})
    if score <= LOW_RATING:
        watchers = {s.id: s for s in supervisors(session) + handlers_of(session, policy, ticket)}
        tell_staff(work, list(watchers.values()), ticket.id, "issues/staff_low_rating",
                   f"issue:{ticket.id}:rated:{event.id}",
                   t=ticket_view(policy, ticket, now), score=score)
    return ticket


def awaiting_rating(session, cadre_id: int) -> Ticket | None:
    """The cadre's most recently resolved ticket that has no rating yet."""
    return session.scalar(select(Ticket).where(
        Ticket.cadre_id == cadre_id, Ticket.state == RESOLVED, Ticket.rating.is_(None))
        .order_by(Ticket.resolved_at.desc(), Ticket.id.desc()))


MAX_TEXT = 1000  # the longest description, note or reply kept from chat or the console


# ---- the reporter's rating question (chat and console share it) ------------------------------
# The rating question comes as a push the reporter may read hours later: it stays open a day,
# beside any dialog (PRODUCT.md §5: not swallowed by another question), until answered.
RATE_QUESTION_FOR = timedelta(hours=24)


def ask_rating(session, ticket: Ticket, actor_openid: str | None, now: datetime) -> None:
    """Put the reporter in front of the rating question (not when they resolved it)."""
    openid = ticket.reporter_openid
    if openid == actor_openid or openid not in reporter_side(session, ticket):
        return
    ask_rating_of(session, openid, ticket.id, now + RATE_QUESTION_FOR)


def drop_rating_question(session, ticket: Ticket) -> None:
    """A reopened ticket is not to be rated: withdraw a pending rating question about it."""
    ask_rating_of(session, ticket.reporter_openid, ticket.id, None)