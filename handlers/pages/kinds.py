"""What the page behind each kind of push offers, and how its answers are recorded.

Each kind finds the thing its push is about (a festival visit, a ticket) from the delivery,
lists the answers the chat would take, and records one through the same service function as
the chat. Pushes of other kinds get the page with their whole text and no buttons.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from bot.context import Actor
from handlers.courses import service as courses
from handlers.festivals import service as festivals
from handlers.festivals.calendar import load_calendar
from handlers.issues import service as issues
from models import Binding, Delivery, utcnow
from models.courses import ENROLLED, CourseSession
from models.festivals import FestivalVisit
from models.issues import RESOLVED, Ticket

VISIT, TICKET, CLASS = "festivals/notice", "issues/reporter_resolved", "courses/reminder"
# Other news of a ticket to its reporter (and family): the page takes words for the staff.
UPDATE = "issues/update"
UPDATES = ("issues/relay", "issues/reporter_claimed", "issues/reporter_transfer",
           "issues/reporter_reopened", "issues/family_new")
NOTE_MAX = 500   # characters a note from a page keeps (the chat's 补充 has no more room)
LEAVE, CANCEL = "leave", "cancel"
AWAY, OTHER = "away", "other"
HALVES = ("am", "pm")
MAX_DAYS = 10   # the most days a visit page offers (one button each morning and afternoon)
SCORES = (5, 4, 3, 2, 1)


@dataclass
class Subject:
    """What a page is about: its kind, the cadre it concerns, and the row behind it."""

    kind: str
    cadre_id: int | None
    row: Any = None
    extra: dict = field(default_factory=dict)


class NotOffered(Exception):
    """The answer posted is not one the page offers (any more)."""


def recipient_cadres(db, openid: str) -> list[int]:
    """The cadres an openid is or acts for (own first)."""
    return list(db.scalars(select(Binding.cadre_id).where(Binding.openid == openid)
                           .order_by(Binding.relation.desc(), Binding.id)))


def binding_of(db, openid: str | None, cadre_id: int | None) -> Binding | None:
    """The viewer's binding to the cadre, if any."""
    if not openid or cadre_id is None:
        return None
    return db.scalar(select(Binding).where(Binding.openid == openid,
                                           Binding.cadre_id == cadre_id))


# ---- finding the subject -----------------------------------------------------------------------
def subject_of(db, settings, delivery: Delivery) -> Subject:
    """The subject of a delivery's page (kind `plain` when it offers no answers)."""
    finder = FINDERS.get(delivery.template)
    found = finder(db, settings, delivery) if finder else None
    return found or Subject("plain", None)


def _campaign(delivery: Delivery, head: str, size: int) -> list[str] | None:
    parts = delivery.campaign.split(":")
    return parts if len(parts) == size and parts[0] == head else None


def _visit(db, settings, delivery: Delivery) -> Subject | None:
    """festival:<key>:<year>:notice -> the visit row of the cadre the notice named."""
    parts = _campaign(delivery, "festival", 4)
    cadres = recipient_cadres(db, delivery.openid)
    if not parts or not parts[2].isdigit() or not cadres:
        return None
    rows = [v for v in db.scalars(select(FestivalVisit).where(
        FestivalVisit.festival_key == parts[1], FestivalVisit.cadre_id.in_(cadres))
        .order_by(FestivalVisit.cadre_id)) if v.festival_date.year == int(parts[2])]
    named = (delivery.facts or {}).get("cadre")
    visit = next((v for v in rows if v.cadre.name == named), rows[0] if rows else None)
    if visit is None:
        return None
    festival = load_calendar(settings).get(visit.festival_key)
    return Subject(VISIT, visit.cadre_id, visit, {"festival": festival})


def _ticket(db, settings, delivery: Delivery) -> Subject | None:
    """issue:<number>:resolved:<event> -> the ticket."""
    parts = _campaign(delivery, "issue", 4)
    ticket = db.get(Ticket, int(parts[1])) if parts and parts[1].isdigit() else None
    return Subject(TICKET, ticket.cadre_id, ticket) if ticket else None


def _update(db, settings, delivery: Delivery) -> Subject | None:
    """issue:<number>:… -> the ticket the news is about."""
    parts = delivery.campaign.split(":")
    if len(parts) < 3 or parts[0] != "issue" or not parts[1].isdigit():
        return None
    ticket = db.get(Ticket, int(parts[1]))
    return Subject(UPDATE, ticket.cadre_id, ticket) if ticket else None


def _class(db, settings, delivery: Delivery) -> Subject | None:
    """course-session:<session>:remind:<cadre> -> the session and the cadre's enrolment."""
    parts = _campaign(delivery, "course-session", 4)
    if not parts or not parts[1].isdigit() or not parts[3].isdigit():
        return None
    meeting = db.get(CourseSession, int(parts[1]))
    if meeting is None:
        return None
    cadre_id = int(parts[3])
    enrollment = courses.enrollment_of(db, meeting.course_id, cadre_id)
    return Subject(CLASS, cadre_id, meeting, {"enrollment": enrollment,
                                               "leave": courses.leave_of(db, meeting, cadre_id)})


FINDERS = {VISIT: _visit, TICKET: _ticket, CLASS: _class,
           **dict.fromkeys(UPDATES, _update)}


# ---- what a page offers ----------------------------------------------------------------------
def offer(db, subject: Subject, today: date) -> dict:
    """The answers the page offers now (empty when none)."""
    if subject.kind == VISIT:
        return _visit_offer(db, subject, today)
    if subject.kind == TICKET:
        ticket = subject.row
        open_ = ticket.state == RESOLVED and ticket.rating is None
        return {"scores": SCORES} if open_ else {}
    if subject.kind == UPDATE:
        return {"note": True} if subject.row.state != RESOLVED else {}
    if subject.kind == CLASS:
        return _class_offer(subject)
    return {}


def _class_offer(subject: Subject) -> dict:
    """Leave for this session and giving up the course, while the seat is held and the
    session is still ahead."""
    enrollment = subject.extra["enrollment"]
    if enrollment is None or enrollment.state != ENROLLED or subject.row.starts_at <= utcnow():
        return {}
    return {LEAVE: subject.extra["leave"] is None, CANCEL: True}


def _visit_offer(db, subject: Subject, today: date) -> dict:
    """Times still ahead in the visit period and `away`, while a chat answer would go here."""
    visit, festival = subject.row, subject.extra["festival"]
    pending = festivals.pending_visit(db, visit.cadre_id, today, visit.festival_key)
    if pending is None or pending.id != visit.id:
        return {}
    first, last = festival.visit_period(visit.festival_date) if festival else (today, today)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    days = [d for d in days if d >= today][:MAX_DAYS]
    return {"times": [(d, half) for d in days for half in HALVES], "away": True}


def choice_key(day: date, half: str) -> str:
    """The form value of one offered time (`2026-09-20:am`)."""
    return f"{day.isoformat()}:{half}"


# ---- acting ----------------------------------------------------------------------------------
def act(work, subject: Subject, viewer: str, binding: Binding, form, words_of) -> None:
    """Record the posted answer through the feature's service; Refusal or NotOffered if not."""
    offered = offer(work.db, subject, work.now.date())
    if subject.kind == VISIT:
        _answer_visit(work, subject, viewer, binding, form, offered, words_of)
    elif subject.kind == TICKET:
        _rate(work, subject, viewer, binding, form, offered)
    elif subject.kind == UPDATE:
        _note(work, subject, viewer, binding, form, offered)
    elif subject.kind == CLASS:
        _class_answer(work, subject, viewer, binding, form, offered)
    else:
        raise NotOffered()


def _answer_visit(work, subject, viewer, binding, form, offered, words_of) -> None:
    choice = form.get("answer", "")
    times = {choice_key(d, h): (d, h) for d, h in offered.get("times", [])}
    own = " ".join((form.get("other") or "").split())[:festivals.MAX_TIME_TEXT]
    if choice == AWAY and offered.get("away"):
        words = None
    elif choice in times:
        words = words_of(*times[choice])
    elif choice == OTHER and own and offered.get("times"):
        words = own   # in their own words, as the chat takes them (`周六下午三点以后`)
    else:
        raise NotOffered()
    visit = work.db.get(FestivalVisit, subject.row.id)
    festivals.record_answer(work.db, visit, words, viewer, binding.relation == "family",
                            work.now)


def _rate(work, subject, viewer, binding, form, offered) -> None:
    score = form.get("score", "")
    if not offered.get("scores") or not score.isdigit() or int(score) not in SCORES:
        raise NotOffered()
    ticket = subject.row
    actor = Actor(viewer, ticket.cadre_id, binding.relation == "family")
    rated = issues.rate(work, actor, ticket.id, int(score))
    issues.drop_rating_question(work.db, rated)   # answered here: the chat stops asking


def _note(work, subject, viewer, binding, form, offered) -> None:
    text = " ".join((form.get("note") or "").split())[:NOTE_MAX]
    if not offered.get("note") or not text:
        raise NotOffered()
    actor = Actor(viewer, subject.cadre_id, binding.relation == "family")
    issues.add_note(work, actor, subject.row.id, text, None)


def _class_answer(work, subject, viewer, binding, form, offered) -> None:
    choice = form.get("answer", "")
    if choice not in (LEAVE, CANCEL) or not offered.get(choice):
        raise NotOffered()
    actor = Actor(viewer, subject.cadre_id, binding.relation == "family")
    meeting = work.db.get(CourseSession, subject.row.id)
    if choice == LEAVE:
        courses.take_leave(work.db, meeting, actor, work.now)
    else:
        courses.cancel(work.db, meeting.course_id, actor, work.now, work.push)
