"""Scheduled jobs: SLA escalation (every 5 minutes), the staff morning digest (08:30) and the
media sweep (every minute: photos and voice still to be downloaded from WeChat)."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from bot import media
from bot.jobs import JobSpec
from handlers.issues import service
from handlers.issues.views import ticket_view
from models import Staff
from models.issues import CLAIMED, OPEN, Ticket

logger = logging.getLogger(__name__)


# ---- SLA ---------------------------------------------------------------------------------
def breach_of(policy, ticket: Ticket, now: datetime) -> str | None:
    """The SLA breach a ticket is in and not yet acted on: escalate, renotify, remind, None."""
    if ticket.state == OPEN and ticket.escalated_at is None:
        sla = policy.sla(ticket.urgent)
        if _due(policy, ticket.created_at, sla.escalate, now):
            return "escalate"
        if ticket.renotified_at is None and _due(policy, ticket.created_at, sla.renotify, now):
            return "renotify"
    elif ticket.state == CLAIMED and _reply_overdue(policy, ticket, now):
        return "remind"
    return None


def _due(policy, start: datetime, working_minutes: float, now: datetime) -> bool:
    """Whether `working_minutes` of working time have passed since `start`."""
    deadline = policy.add_working_minutes(start, working_minutes)
    return deadline is not None and now >= deadline


def _reply_overdue(policy, ticket: Ticket, now: datetime) -> bool:
    """Claimed, nobody has answered the reporter since, and a working day has passed."""
    if ticket.reminded_round >= ticket.assign_round or ticket.assigned_at is None:
        return False
    if ticket.last_reply_at is not None and ticket.last_reply_at >= ticket.assigned_at:
        return False
    minutes = policy.reply_within_working_days * policy.working_day_minutes
    return _due(policy, ticket.assigned_at, minutes, now)


def _mark(session, ticket: Ticket, breach: str, now: datetime) -> bool:
    """Record that a breach is acted on; False when another run already did (idempotent)."""
    column = {"escalate": Ticket.escalated_at, "renotify": Ticket.renotified_at}.get(breach)
    query = update(Ticket).where(Ticket.id == ticket.id)
    if column is not None:
        values = {column.key: now}
        if breach == "escalate":
            values["renotified_at"] = ticket.renotified_at or now  # no re-ping after this
        query = query.where(column.is_(None)).values(**values)
    else:
        query = query.where(Ticket.reminded_round < ticket.assign_round) \
            .values(reminded_round=ticket.assign_round)
    won = session.execute(query.execution_options(synchronize_session=False)).rowcount
    session.refresh(ticket)
    return bool(won)


def _recipients(session, policy, ticket: Ticket, breach: str):
    if breach == "escalate":
        return service.supervisors(session)
    if breach == "renotify":
        return service.route(session, policy, ticket.category)
    a = ticket.assignee
    return [a] if a is not None and a.active and a.openid else []


def act_on_breach(work, ticket: Ticket, breach: str) -> int:
    """Ping the right people about one breach, once, and record it on the ticket."""
    session, policy, now = service.parts(work)
    if not _mark(session, ticket, breach, now):
        return 0
    staff = _recipients(session, policy, ticket, breach)
    campaign = f"sla:{ticket.id}:" + (f"unclaimed-{breach}" if breach != "remind"
                                      else f"noreply-r{ticket.assign_round}")
    names = service.tell_staff(work, staff, ticket.id, f"issues/sla_{breach}", campaign,
                               t=ticket_view(policy, ticket, now))
    service.add_event(session, ticket, f"sla_{breach}", now, data={"to": names})
    if not names:
        logger.warning("ticket %s: SLA %s but nobody to tell", ticket.id, breach)
    logger.info("ticket %s: SLA %s -> %d staff", ticket.id, breach, len(names))
    return 1


def sla_escalation(job) -> int:
    """Job: re-ping, escalate and remind according to config/issue_categories.yaml; acts on
    every open ticket's pending SLA breach and returns how many were acted on."""
    session, policy, now = service.parts(job)
    done = 0
    for ticket in service.active_tickets(session):
        breach = breach_of(policy, ticket, now)
        if breach:
            done += act_on_breach(job, ticket, breach)
    return done


# ---- digest ------------------------------------------------------------------------------
def staff_digest(job) -> int:
    """Job: the 08:30 digest: each reachable staff member gets their open tickets (and what
    nobody has claimed)."""
    session, policy, now = service.parts(job)
    today = now.astimezone(policy.zone).date()
    if policy.digest_on_working_days_only and not policy.is_workday(today):
        return 0
    active = service.active_tickets(session)
    unclaimed = [ticket_view(policy, t, now) for t in active if t.state == OPEN]
    sent = 0
    staff = session.scalars(select(Staff).where(Staff.active.is_(True),
                                                Staff.openid.is_not(None)).order_by(Staff.id))
    for person in staff:
        mine = [ticket_view(policy, t, now) for t in active if t.assignee_id == person.id]
        if not mine and not unclaimed:
            continue
        if job.push(person.openid, "issues/digest", campaign=f"digest:{today.isoformat()}",
                mine=mine, unclaimed=unclaimed, staff_name=person.name) is not None:
            sent += 1
    return sent


# ---- photos and voice kept -----------------------------------------------------------------
def media_sweep(job) -> int:
    """Job: photos and voice WeChat no longer keeps are marked expired; those due (a retry's
    time come, or a queue message lost) are queued for download; returns how many of both."""
    return media.sweep(job)


jobs = [
    JobSpec("sla_escalation", sla_escalation, {"trigger": "interval", "minutes": 5},
            "Unclaimed tickets: re-ping duty staff, escalate to supervisors; remind silent "
            "assignees"),
    JobSpec("staff_digest", staff_digest, {"trigger": "cron", "hour": 8, "minute": 30},
            "Morning digest of open tickets for every staff member"),
    JobSpec("media_sweep", media_sweep, {"trigger": "interval", "minutes": 1},
            "Photos and voice of tickets: retry downloads that are due, pick up lost ones, "
            "give up on what WeChat deleted"),
]
