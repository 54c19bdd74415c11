"""Festival visits and greetings: who hears what when, visit answers, the staff's list.

Service functions take a session, the calendar and primitives, so chat, jobs and the console
share them. Every push is keyed (campaign, openid): running a job twice never sends twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from handlers.festivals.calendar import Festival, FestivalCalendar, birthday_in
from models import Binding, Cadre
from models.festivals import AWAY, TIME, FestivalVisit
from models.people import on_duty_openids, recipients_of

logger = logging.getLogger(__name__)
Push = Callable[..., object]
MAX_TIME_TEXT = 200
RECENT_DAYS = 30  # `走访安排 中秋` shortly after 中秋 still shows that 中秋's answers


# ---- who hears of it -------------------------------------------------------------------------
def audience(session, military_only: bool = False) -> list[Cadre]:
    """Active cadres bound to WeChat (as themselves or through family), oldest row first."""
    bound = exists(select(Binding.id).where(Binding.cadre_id == Cadre.id))
    query = select(Cadre).where(Cadre.to_be_pushed(), bound).order_by(Cadre.id)
    if military_only:
        query = query.where(Cadre.is_military.is_(True))
    return list(session.scalars(query))


def recipients(session, cadre_id: int) -> list[tuple[str, bool]]:
    """(openid, is_family) for each following openid that receives this cadre's pushes."""
    family = set(session.scalars(select(Binding.openid).where(
        Binding.cadre_id == cadre_id, Binding.relation == "family")))
    own = set(session.scalars(select(Binding.openid).where(
        Binding.cadre_id == cadre_id, Binding.relation == "self")))
    return [(openid, openid in family and openid not in own)
            for openid in recipients_of(session, cadre_id)]


def _tell_cadre(session, cadre: Cadre, template: str, campaign: str, push: Push,
                **values) -> int:
    """Push one message to a cadre and their family; how many new deliveries were made."""
    made = 0
    for openid, to_family in recipients(session, cadre.id):
        if push(openid, template, campaign=campaign, cadre_name=cadre.name,
                to_family=to_family, **values) is not None:
            made += 1
    return made


# ---- visit notices ---------------------------------------------------------------------------
def notices_due(cal: FestivalCalendar, today: date) -> list[tuple[Festival, date]]:
    """(festival, its date) for every visit whose notice goes out today."""
    due = []
    for festival in cal.festivals:
        target = today + timedelta(days=festival.days_before)
        if festival.visit and target in festival.dates_in(target.year):
            due.append((festival, target))
    return due


def send_notices(session, cal: FestivalCalendar, now: datetime, push: Push) -> int:
    """Job body: today's visit notices to every active bound cadre in each audience."""
    today = now.date()
    made = 0
    for festival, day in notices_due(cal, today):
        made += notify_visit(session, cal, festival, day, now, push)
    return made


def notify_visit(session, cal: FestivalCalendar, festival: Festival, day: date,
                 now: datetime, push: Push) -> int:
    """Tell the festival's audience of the visit on `day`; record whom, for their answers."""
    campaign = f"festival:{festival.key}:{day.year}:notice"
    visit_from, visit_to = festival.visit_period(day)
    made = reached = 0
    for cadre in audience(session, festival.military_only):
        if not recipients_of(session, cadre.id):
            continue  # nobody follows the account for this cadre: nobody to answer either
        made += _tell_cadre(session, cadre, "festivals/notice", campaign, push,
                            festival=festival, day=day, visit_from=visit_from,
                            visit_to=visit_to, signature=cal.signature)
        _record_notice(session, festival.key, day, cadre.id, now)
        reached += 1
    logger.info("festival %s %s: notice to %d cadres, %d new deliveries", festival.key, day,
                reached, made)
    return made


def _visit(session, key: str, day: date, cadre_id: int) -> FestivalVisit | None:
    return session.scalar(select(FestivalVisit).where(
        FestivalVisit.festival_key == key, FestivalVisit.festival_date == day,
        FestivalVisit.cadre_id == cadre_id))


def _record_notice(session, key: str, day: date, cadre_id: int, now: datetime) -> None:
    """Remember that the cadre was told (once; a concurrent run's row is as good as ours)."""
    if _visit(session, key, day, cadre_id) is not None:
        return
    try:
        with session.begin_nested():
            session.add(FestivalVisit(festival_key=key, festival_date=day, cadre_id=cadre_id,
                                      noticed_at=now))
    except IntegrityError:
        logger.info("festival %s %s: cadre %s already recorded", key, day, cadre_id)


# ---- greetings -------------------------------------------------------------------------------
def send_greetings(session, cal: FestivalCalendar, now: datetime, push: Push) -> int:
    """Job body: on a festival's day, its greeting to its audience."""
    today = now.date()
    made = 0
    for festival in cal.on(today):
        campaign = f"festival:{festival.key}:{today.year}:greeting"
        for cadre in audience(session, festival.military_only):
            made += _tell_cadre(session, cadre, "festivals/greeting", campaign, push,
                                festival=festival, day=today, signature=cal.signature)
        logger.info("festival %s %s: greetings sent", festival.key, today)
    return made


def birthdays_on(session, day: date, cadres: list[Cadre] | None = None) -> list[Cadre]:
    """Cadres whose birthday is kept on `day` (29 February on the 28th in common years)."""
    if cadres is None:
        cadres = list(session.scalars(select(Cadre).where(
            Cadre.to_be_pushed(), Cadre.birth_date.is_not(None)).order_by(Cadre.id)))
    return [c for c in cadres if c.birth_date is not None and c.birth_date < day
            and birthday_in(day.year, c.birth_date) == day]


def send_birthdays(session, cal: FestivalCalendar, now: datetime, push: Push) -> int:
    """Job body: today's birthday greetings, and staff told of milestones a week ahead."""
    today = now.date()
    made = 0
    for cadre in birthdays_on(session, today, audience(session)):
        made += _tell_cadre(session, cadre, "festivals/birthday", f"birthday:{cadre.id}:"
                            f"{today.year}", push, age=today.year - cadre.birth_date.year,
                            text=cal.birthdays.greeting, signature=cal.signature)
    return made + tell_staff_of_milestones(session, cal, today, push)


@dataclass
class Milestone:
    """A cadre reaching a milestone age soon, as staff see it."""

    name: str
    age: int
    day: date
    phone: str
    community: str | None
    address: str | None
    bound: bool


def milestones_on(session, cal: FestivalCalendar, day: date) -> list[Milestone]:
    """Active cadres (bound to WeChat or not: staff visit everyone) turning 80, 90, … on `day`."""
    found = []
    for cadre in birthdays_on(session, day):
        age = day.year - cadre.birth_date.year
        if cal.birthdays.is_milestone(age):
            bound = session.scalar(select(Binding.id).where(Binding.cadre_id == cadre.id))
            found.append(Milestone(cadre.name, age, day, cadre.phone, cadre.community,
                                   cadre.address, bound is not None))
    return found


def tell_staff_of_milestones(session, cal: FestivalCalendar, today: date, push: Push) -> int:
    """On-duty staff (else supervisors) hear of milestone birthdays `staff_days_before` ahead."""
    day = today + timedelta(days=cal.birthdays.staff_days_before)
    people = milestones_on(session, cal, day)
    if not people:
        return 0
    staff = on_duty_openids(session)
    if not staff:
        logger.warning("milestone birthdays on %s: no staff to tell", day)
    made = sum(push(openid, "festivals/milestone_staff", campaign=f"birthday:milestones:{day}",
                    people=people, day=day) is not None for openid in staff)
    logger.info("milestone birthdays on %s: %d cadres, %d staff told", day, len(people), made)
    return made


# ---- answers ---------------------------------------------------------------------------------
def pending_visit(session, cadre_id: int, today: date,
                  festival_key: str | None = None) -> FestivalVisit | None:
    """The visit whose notice this cadre received most recently, if the festival is still ahead
    (of one festival when `festival_key` is given: two notices can be open at once)."""
    query = select(FestivalVisit).where(FestivalVisit.cadre_id == cadre_id,
                                        FestivalVisit.festival_date >= today)
    if festival_key is not None:
        query = query.where(FestivalVisit.festival_key == festival_key)
    return session.scalar(query.order_by(FestivalVisit.noticed_at.desc(),
                                         FestivalVisit.id.desc()))


def record_answer(session, visit: FestivalVisit, words: str | None, openid: str,
                  on_behalf: bool, now: datetime) -> FestivalVisit:
    """Keep the answer (a preferred time, or None for not at home); a later answer replaces it."""
    visit.answer = TIME if words else AWAY
    visit.preferred_time = words[:MAX_TIME_TEXT] if words else None
    visit.answered_by, visit.on_behalf, visit.answered_at = openid, on_behalf, now
    session.flush()
    logger.info("festival %s %s: cadre %s answered %s%s", visit.festival_key,
                visit.festival_date, visit.cadre_id, visit.answer,
                " (family)" if on_behalf else "")
    return visit


# ---- the staff's list ------------------------------------------------------------------------
@dataclass
class VisitLine:
    """One cadre in the staff's list."""

    name: str
    community: str | None
    phone: str
    preferred_time: str | None
    on_behalf: bool


@dataclass
class Arrangements:
    """Everything `走访安排` shows about one festival date."""

    festival: Festival
    day: date
    notice_day: date
    noticed: int = 0
    times: list[VisitLine] = field(default_factory=list)
    away: list[VisitLine] = field(default_factory=list)
    silent: list[VisitLine] = field(default_factory=list)


def occurrence_for_staff(session, festival: Festival, today: date) -> date:
    """Which date of a festival staff mean: the one whose notices went out lately, else the next."""
    recent = session.scalar(select(FestivalVisit.festival_date).where(
        FestivalVisit.festival_key == festival.key,
        FestivalVisit.festival_date >= today - timedelta(days=RECENT_DAYS))
        .order_by(FestivalVisit.festival_date.desc()))
    return recent if recent is not None else festival.next_date(today)


def next_visit(cal: FestivalCalendar, today: date) -> tuple[Festival, date] | None:
    """The next festival (today or later) that has visits."""
    found = [(f.next_date(today), i, f) for i, f in enumerate(cal.festivals) if f.visit]
    if not found:
        return None
    day, _, festival = min(found)
    return festival, day


def arrangements(session, festival: Festival, day: date) -> Arrangements:
    """The answers for one festival date: preferred times, not at home, not answered."""
    result = Arrangements(festival, day, festival.notice_date(day))
    rows = session.execute(select(FestivalVisit, Cadre).join(Cadre).where(
        FestivalVisit.festival_key == festival.key, FestivalVisit.festival_date == day)
        .order_by(Cadre.community.is_(None), Cadre.community, Cadre.name, Cadre.id)).all()
    for visit, cadre in rows:
        line = VisitLine(cadre.name, cadre.community, cadre.phone, visit.preferred_time,
                         visit.on_behalf)
        {TIME: result.times, AWAY: result.away}.get(visit.answer, result.silent).append(line)
    result.noticed = len(rows)
    return result
