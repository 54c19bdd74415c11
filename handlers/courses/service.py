"""Course service: sign-up, cancel, wait-list promotion, listings, rosters, course upserts.

Functions take a session and primitives, write through the session (never commit) and queue
messages through `push(openid, template, *, campaign, kind, **values)` (ctx.push, job.push or
the CLI's unit of work). Capacity is enforced under a row lock on the course
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE).
A request that cannot be done as asked raises Refusal, whose code picks the answer.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot import errors
from bot.context import Actor
from bot.text import mask_name
from models.courses import (
    ACTIVE_STATES,
    CANCELLED,
    ENROLLED,
    WAITLISTED,
    Course,
    CourseEvent,
    CourseSession,
    Enrollment,
)
from models.base import utcnow
from models.people import ActionLog, Binding, Cadre, recipients_of

logger = logging.getLogger(__name__)
Push = Callable[..., object]
LEAVE = "leave"   # a course event: away from one session, the seat kept


class Refusal(errors.Refusal):
    """A request that cannot be done as asked; `code` picks the answer in courses/refused."""

    template = "courses/refused"




@dataclass
class CourseView:
    """A course as templates show it (local times)."""

    number: int
    name: str
    venue: str
    capacity: int
    enrolled: int
    waiting: int
    deadline: date
    upcoming: list[datetime]
    total_sessions: int
    open: bool

    @property
    def seats_left(self) -> int:
        """Free seats (never negative, also after a capacity cut)."""
        return max(self.capacity - self.enrolled, 0)

    @property
    def first(self) -> datetime | None:
        """The next session, local time."""
        return self.upcoming[0] if self.upcoming else None


@dataclass
class Outcome:
    """What a sign-up or cancellation did: the course, the new state, the queue position."""

    course: CourseView
    state: str            # enrolled | waitlisted | cancelled
    changed: bool         # False: it was already so (already enrolled / waiting)
    position: int | None = None
    promoted: list[int] | None = None  # cadre ids moved from the wait-list to a seat


# ---- reading -------------------------------------------------------------------------------
def get_course(session, number: int, *, lock: bool = False) -> Course:
    """Course `number` (locked for update when asked), else Refusal not_found."""
    course = session.get(Course, number, with_for_update=lock or None,
                         populate_existing=lock)
    if course is None or not course.active:
        raise Refusal("not_found", n=number)
    return course


def counts(session, course_id: int) -> tuple[int, int]:
    """(enrolled, wait-listed) of a course."""
    rows = dict(session.execute(select(Enrollment.state, func.count(Enrollment.id))
                                .where(Enrollment.course_id == course_id)
                                .group_by(Enrollment.state)).all())
    return rows.get(ENROLLED, 0), rows.get(WAITLISTED, 0)


def is_open(course: Course, now: datetime) -> bool:
    """Sign-up open: the deadline day has not passed and a session is still ahead."""
    return now.date() <= course.deadline and any(s.starts_at > now for s in course.sessions)


def course_view(session, course: Course, now: datetime) -> CourseView:
    """Build the CourseView of one course, times in now's zone."""
    enrolled, waiting = counts(session, course.id)
    upcoming = [s.starts_at.astimezone(now.tzinfo) for s in course.sessions
                if s.starts_at > now]
    return CourseView(number=course.id, name=course.name, venue=course.venue,
                      capacity=course.capacity, enrolled=enrolled, waiting=waiting,
                      deadline=course.deadline, upcoming=upcoming,
                      total_sessions=len(course.sessions), open=is_open(course, now))


def open_courses(session, now: datetime) -> list[CourseView]:
    """Courses open for sign-up, soonest first session first."""
    courses = session.scalars(select(Course).where(Course.active.is_(True),
                                                   Course.deadline >= now.date())
                              .order_by(Course.id)).all()
    views = [course_view(session, c, now) for c in courses if is_open(c, now)]
    return sorted(views, key=lambda v: (v.first, v.number))


def enrollment_of(session, course_id: int, cadre_id: int) -> Enrollment | None:
    """The cadre's row for a course (any state), or None."""
    return session.scalar(select(Enrollment).where(Enrollment.course_id == course_id,
                                                   Enrollment.cadre_id == cadre_id))


def position(session, enrollment: Enrollment) -> int | None:
    """1-based wait-list position, None when not wait-listed."""
    if enrollment.state != WAITLISTED:
        return None
    ahead = session.scalar(select(func.count(Enrollment.id)).where(
        Enrollment.course_id == enrollment.course_id, Enrollment.state == WAITLISTED,
        Enrollment.queue_no < enrollment.queue_no))
    return ahead + 1


@dataclass
class MyCourse:
    """One line of `我的课程`."""

    course: CourseView
    state: str
    position: int | None


def my_courses(session, cadre_id: int, now: datetime) -> list[MyCourse]:
    """The cadre's seats and wait-list places in courses that still have a session ahead."""
    rows = session.scalars(select(Enrollment).join(Course).where(
        Enrollment.cadre_id == cadre_id, Enrollment.state.in_(ACTIVE_STATES),
        Course.active.is_(True)).order_by(Enrollment.course_id)).all()
    found = []
    for e in rows:
        view = course_view(session, e.course, now)
        if view.upcoming:
            found.append(MyCourse(view, e.state, position(session, e)))
    return sorted(found, key=lambda m: (m.course.first, m.course.number))


# ---- recording -----------------------------------------------------------------------------
def record(session, course: Course, cadre_id: int, kind: str, now: datetime,
           actor: Actor | None = None, **data) -> CourseEvent:
    """Add a course event (and, for people's own acts, an action-log line)."""
    event = CourseEvent(course_id=course.id, cadre_id=cadre_id, kind=kind, at=now,
                        actor_role=actor.role if actor else "system",
                        actor_openid=actor.openid if actor else None,
                        on_behalf=bool(actor and actor.on_behalf), data=data or None)
    session.add(event)
    if actor is not None:
        session.add(ActionLog(openid=actor.openid, cadre_id=cadre_id, on_behalf=actor.on_behalf,
                              action=f"course.{kind}:{course.id}", at=now))
    return event


# ---- sign-up and cancel --------------------------------------------------------------------
def sign_up(session, number: int, actor: Actor, now: datetime, push: Push) -> Outcome:
    """Take a seat, or a wait-list place when the course is full; once per cadre."""
    course = get_course(session, number, lock=True)
    existing = enrollment_of(session, course.id, actor.cadre_id)
    if existing is not None and existing.state in ACTIVE_STATES:
        return Outcome(course_view(session, course, now), existing.state, False,
                       position(session, existing))
    _refuse_if_closed(session, course, now)
    enrolled, _ = counts(session, course.id)
    state = ENROLLED if enrolled < course.capacity else WAITLISTED
    course.signup_seq += 1
    enrollment = _place(session, course, existing, actor, state, now)
    event = record(session, course, actor.cadre_id, state, now, actor,
                   queue_no=enrollment.queue_no)
    session.flush()
    view = course_view(session, course, now)
    _tell_family(session, view, actor, state, push, event.id)
    logger.info("[%s] course %s: cadre %s %s%s", actor.openid, course.id, actor.cadre_id, state,
                " (family)" if actor.on_behalf else "")
    return Outcome(view, state, True, position(session, enrollment))


def _refuse_if_closed(session, course: Course, now: datetime) -> None:
    if not any(s.starts_at > now for s in course.sessions):
        raise Refusal("finished", n=course.id, name=course.name)
    if now.date() > course.deadline:
        raise Refusal("deadline_passed", n=course.id, name=course.name,
                      deadline=course.deadline)


def _place(session, course: Course, existing: Enrollment | None, actor: Actor, state: str,
           now: datetime) -> Enrollment:
    """Write the enrolment (a new row, or the cancelled one reused)."""
    row = existing or Enrollment(course_id=course.id, cadre_id=actor.cadre_id)
    row.state, row.queue_no, row.signed_up_at = state, course.signup_seq, now
    row.enrolled_at = now if state == ENROLLED else None
    row.cancelled_at, row.signed_up_by, row.on_behalf = None, actor.openid, actor.on_behalf
    if existing is None:
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # only possible without the row lock: refuse, never double
            raise Refusal("busy", n=course.id) from None
    return row


def cancel(session, number: int, actor: Actor, now: datetime, push: Push) -> Outcome:
    """Give up a seat or a wait-list place; a freed seat goes to the first in the queue."""
    course = get_course(session, number, lock=True)
    enrollment = enrollment_of(session, course.id, actor.cadre_id)
    if enrollment is None or enrollment.state not in ACTIVE_STATES:
        raise Refusal("not_signed_up", n=course.id, name=course.name)
    if not any(s.starts_at > now for s in course.sessions):
        raise Refusal("finished", n=course.id, name=course.name)
    was = enrollment.state
    enrollment.state, enrollment.cancelled_at = CANCELLED, now
    event = record(session, course, actor.cadre_id, "cancelled", now, actor, was=was)
    session.flush()
    promoted = fill_seats(session, course, now, push)
    view = course_view(session, course, now)
    _tell_family(session, view, actor, CANCELLED, push, event.id)
    logger.info("[%s] course %s: cadre %s cancelled (%s), promoted %s", actor.openid,
                course.id, actor.cadre_id, was, promoted)
    return Outcome(view, CANCELLED, True, None, promoted)


def fill_seats(session, course: Course, now: datetime, push: Push) -> list[int]:
    """Move wait-listed people into free seats, in queue order; tell them. Caller holds the lock."""
    enrolled, _ = counts(session, course.id)
    free = course.capacity - enrolled
    if free <= 0:
        return []
    queue = session.scalars(select(Enrollment).where(
        Enrollment.course_id == course.id, Enrollment.state == WAITLISTED)
        .order_by(Enrollment.queue_no).limit(free)).all()
    view = None
    for e in queue:
        e.state, e.enrolled_at = ENROLLED, now
        event = record(session, course, e.cadre_id, "promoted", now, queue_no=e.queue_no)
        session.flush()
        view = view or course_view(session, course, now)
        cadre = session.get(Cadre, e.cadre_id)
        for openid in recipients_of(session, e.cadre_id):
            push(openid, "courses/promoted", campaign=f"course:{course.id}:promoted:{event.id}",
                 kind="scheduled", c=view, cadre_name=cadre.name,
                 for_family=openid != _self_openid(session, e.cadre_id))
        logger.info("course %s: cadre %s (%s) promoted from the wait-list", course.id,
                    e.cadre_id, mask_name(cadre.name))
    return [e.cadre_id for e in queue]


def _self_openid(session, cadre_id: int) -> str | None:
    """The openid bound as the cadre themself (not family), if any."""
    return session.scalar(select(Binding.openid).where(Binding.cadre_id == cadre_id,
                                                       Binding.relation == "self"))


def _tell_family(session, view: CourseView, actor: Actor, state: str, push: Push,
                 event_id: int) -> None:
    """When a family member acts, the cadre and the other family members hear of it."""
    if not actor.on_behalf:
        return
    cadre = session.get(Cadre, actor.cadre_id)
    for openid in recipients_of(session, actor.cadre_id):
        if openid == actor.openid:
            continue
        push(openid, "courses/family_acted", campaign=f"course:{view.number}:acted:{event_id}",
             kind="scheduled", c=view, state=state, cadre_name=cadre.name,
             for_cadre=openid == _self_openid(session, actor.cadre_id))


# ---- courses (CLI, import) -----------------------------------------------------------------
@dataclass
class CourseData:
    """A course as an operator describes it: sessions are aware datetimes."""

    name: str
    sessions: list[datetime]
    venue: str
    capacity: int
    deadline: date


def course_named(session, name: str) -> Course | None:
    """The course with this name, if any."""
    return session.scalar(select(Course).where(Course.name == name))


def create_course(session, data: CourseData) -> Course:
    """A new course with its sessions (ValueError when the name is taken)."""
    if course_named(session, data.name) is not None:
        raise ValueError(f"a course named {data.name!r} already exists")
    course = Course(name=data.name, venue=data.venue, capacity=data.capacity,
                    deadline=data.deadline, active=True)
    course.sessions = [CourseSession(starts_at=t) for t in sorted(set(data.sessions))]
    session.add(course)
    session.flush()
    return course


def update_course(session, course: Course, data: CourseData, now: datetime,
                  push: Push) -> list[int]:
    """Apply new details; sessions are matched by time; more seats promote the wait-list."""
    session.refresh(course, with_for_update=True)
    course.venue, course.capacity, course.deadline = data.venue, data.capacity, data.deadline
    course.active = True
    wanted = set(data.sessions)
    for s in list(course.sessions):
        if s.starts_at not in wanted:
            course.sessions.remove(s)
    have = {s.starts_at for s in course.sessions}
    for t in sorted(wanted - have):
        course.sessions.append(CourseSession(starts_at=t))
    session.flush()
    session.refresh(course, ["sessions"])
    return fill_seats(session, course, now, push)


def all_courses(session, now: datetime) -> list[CourseView]:
    """Every active course (for `course list`), by number."""
    courses = session.scalars(select(Course).where(Course.active.is_(True))
                              .order_by(Course.id)).all()
    return [course_view(session, c, now) for c in courses]


@dataclass
class RosterRow:
    """One person on a course roster (staff see the full phone)."""

    name: str
    phone: str
    branch: str | None
    state: str
    position: int | None
    signed_up_at: datetime
    on_behalf: bool
    leave: datetime | None = None   # the start of the next session they asked leave for


def roster(session, number: int, zone) -> list[RosterRow]:
    """Enrolled people, then the wait-list in order (cancelled rows are left out)."""
    course = session.get(Course, number)
    if course is None:
        raise Refusal("not_found", n=number)
    rows = session.execute(select(Enrollment, Cadre).join(Cadre).where(
        Enrollment.course_id == number, Enrollment.state.in_(ACTIVE_STATES))
        .order_by((Enrollment.state == WAITLISTED), Enrollment.queue_no)).all()
    upcoming = next((m for m in sorted(course.sessions, key=lambda m: m.starts_at)
                     if m.starts_at > utcnow()), None)
    away = _on_leave(session, upcoming) if upcoming is not None else set()
    out, waiting = [], 0
    for e, cadre in rows:
        waiting += e.state == WAITLISTED
        out.append(RosterRow(cadre.name, cadre.phone, cadre.branch, e.state,
                             waiting if e.state == WAITLISTED else None,
                             e.signed_up_at.astimezone(zone), e.on_behalf,
                             upcoming.starts_at.astimezone(zone) if cadre.id in away else None))
    return out


# ---- leave for one session -----------------------------------------------------------------
def leave_of(session, meeting: CourseSession, cadre_id: int) -> CourseEvent | None:
    """The leave a cadre asked for this session, if any."""
    return next((e for e in session.scalars(select(CourseEvent).where(
        CourseEvent.course_id == meeting.course_id, CourseEvent.cadre_id == cadre_id,
        CourseEvent.kind == LEAVE)) if (e.data or {}).get("session_id") == meeting.id), None)


def _on_leave(session, meeting: CourseSession) -> set[int]:
    """The cadres who asked leave for this session."""
    return {e.cadre_id for e in session.scalars(select(CourseEvent).where(
        CourseEvent.course_id == meeting.course_id, CourseEvent.kind == LEAVE))
        if (e.data or {}).get("session_id") == meeting.id}


def take_leave(session, meeting: CourseSession, actor: Actor, now: datetime) -> CourseEvent:
    """`请假` for one session (a reminder's page): the seat stays, the roster shows it; once."""
    course = meeting.course
    enrollment = enrollment_of(session, course.id, actor.cadre_id)
    if enrollment is None or enrollment.state != ENROLLED:
        raise Refusal("not_signed_up", n=course.id, name=course.name)
    if meeting.starts_at <= utcnow():
        raise Refusal("finished", n=course.id, name=course.name)
    earlier = leave_of(session, meeting, actor.cadre_id)
    if earlier is not None:
        return earlier
    event = record(session, course, actor.cadre_id, LEAVE, now, actor, session_id=meeting.id)
    session.flush()
    logger.info("[%s] course %s: cadre %s on leave for session %s%s", actor.openid, course.id,
                actor.cadre_id, meeting.id, " (family)" if actor.on_behalf else "")
    return event


def leave_next(session, number: int, actor: Actor, now: datetime) -> tuple[CourseSession, bool]:
    """`请假 3` in chat: leave for course 3's next session, the seat kept. Returns the
    session and whether leave had been asked for it already."""
    course = get_course(session, number)
    meeting = min((s for s in course.sessions if s.starts_at > now),
                  key=lambda s: s.starts_at, default=None)
    if meeting is None:
        raise Refusal("finished", n=course.id, name=course.name)
    earlier = leave_of(session, meeting, actor.cadre_id) if actor.cadre_id else None
    take_leave(session, meeting, actor, now)
    return meeting, earlier is not None


# ---- reminders -----------------------------------------------------------------------------
def sessions_on(session, day: date, zone) -> list[CourseSession]:
    """Sessions of active courses that start on a local calendar day."""
    start = datetime.combine(day, datetime.min.time(), zone)
    end = datetime.combine(date.fromordinal(day.toordinal() + 1), datetime.min.time(), zone)
    return list(session.scalars(select(CourseSession).join(Course).where(
        Course.active.is_(True), CourseSession.starts_at >= start,
        CourseSession.starts_at < end).order_by(CourseSession.starts_at)))


def send_reminders(session, now: datetime, push: Push) -> int:
    """The evening before each session: remind every enrolled cadre and their family, once."""
    tomorrow = date.fromordinal(now.date().toordinal() + 1)
    return sum(_remind_session(session, meeting, now, push)
               for meeting in sessions_on(session, tomorrow, now.tzinfo))


def _remind_session(session, meeting: CourseSession, now: datetime, push: Push) -> int:
    """One session's reminders, keyed (session, cadre) per recipient: reruns send nothing."""
    course, sent = meeting.course, 0
    values = {"name": course.name, "venue": course.venue, "number": course.id,
              "starts": meeting.starts_at.astimezone(now.tzinfo)}
    cadres = session.scalars(select(Cadre).join(Enrollment).where(
        Enrollment.course_id == course.id, Enrollment.state == ENROLLED,
        Cadre.to_be_pushed()).order_by(Cadre.id)).all()
    for cadre in cadres:
        self_openid = _self_openid(session, cadre.id)
        campaign = f"course-session:{meeting.id}:remind:{cadre.id}"
        for openid in recipients_of(session, cadre.id):
            if push(openid, "courses/reminder", campaign=campaign, kind="scheduled",
                    cadre_name=cadre.name, for_family=openid != self_openid,
                    **values) is not None:
                sent += 1
    return sent
