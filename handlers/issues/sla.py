"""The SLA timer a console line shows: time until a ticket's next breach, or how late it is."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.issues import CLAIMED, OPEN, Ticket


@dataclass(frozen=True)
class SlaTimer:
    """Where a ticket stands against its SLA at `now`.

    stage: `claim` (waiting to be claimed), `escalate` (claim deadline missed, supervisors
    not yet due), `escalated` (past the supervisors' deadline), `reply` (claimed, nobody
    has answered the reporter yet), `replied` (answered: no clock), `none` (resolved, or no
    deadline within reach of the working calendar).
    """

    stage: str
    due: datetime | None = None          # the next deadline (local time)
    left_minutes: int = 0                # until `due`
    late_minutes: int = 0                # since the first deadline that was missed
    escalated: bool = False              # the SLA job has told the supervisors

    @property
    def level(self) -> str:
        """`ok`, `late` or `critical`, for colouring."""
        if self.stage == "escalated" or (self.stage == "reply" and self.late_minutes):
            return "critical"
        return "late" if self.stage == "escalate" else "ok"


def _minutes(a: datetime, b: datetime) -> int:
    """Whole minutes from a to b (0 when b is not after a)."""
    return max(int((b - a).total_seconds() // 60), 0)


def sla_timer(policy, ticket: Ticket, now: datetime) -> SlaTimer:
    """The SLA timer of one ticket, by the same numbers the escalation job uses."""
    zone = policy.zone
    if ticket.state == OPEN:
        sla = policy.sla(ticket.urgent)
        claim_by = policy.add_working_minutes(ticket.created_at, sla.renotify)
        escalate_by = policy.add_working_minutes(ticket.created_at, sla.escalate)
        if claim_by is None or escalate_by is None:
            return SlaTimer("none")
        escalated = ticket.escalated_at is not None
        if now < claim_by:
            return SlaTimer("claim", claim_by.astimezone(zone), _minutes(now, claim_by))
        late = _minutes(claim_by, now)
        if now < escalate_by and not escalated:
            return SlaTimer("escalate", escalate_by.astimezone(zone),
                            _minutes(now, escalate_by), late)
        return SlaTimer("escalated", escalate_by.astimezone(zone), 0, late, escalated)
    if ticket.state == CLAIMED and ticket.assigned_at is not None:
        if ticket.last_reply_at is not None and ticket.last_reply_at >= ticket.assigned_at:
            return SlaTimer("replied")
        minutes = policy.reply_within_working_days * policy.working_day_minutes
        reply_by = policy.add_working_minutes(ticket.assigned_at, minutes)
        if reply_by is None:
            return SlaTimer("none")
        return SlaTimer("reply", reply_by.astimezone(zone), _minutes(now, reply_by),
                        _minutes(reply_by, now))
    return SlaTimer("none")
