"""The contract between features and the scheduler: JobSpec and the JobCtx a job receives."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable


@dataclass(frozen=True)
class JobSpec:
    """A scheduled job a feature module exposes in its `jobs` list.

    `func(job: JobCtx) -> int` returns how many things it did (pushes, escalations…).
    `trigger` is APScheduler 3 `add_job` trigger arguments, e.g.
    {"trigger": "cron", "hour": 9, "minute": 30} or {"trigger": "interval", "minutes": 5}.
    """

    name: str
    func: Callable
    trigger: dict
    description: str = ""


@dataclass
class JobCtx:
    """What a job may use: a session, the local 'now', rendering and pushes."""

    db: Any
    now: datetime
    services: Any
    pushed: list = field(default_factory=list)

    @property
    def settings(self):
        """The app settings."""
        return self.services.settings

    def reply(self, template: str, **values) -> str:
        """Render a template."""
        return self.services.render(template, **values)

    def push(self, openid: str, template: str, *, campaign: str, kind: str = "scheduled",
             **values):
        """Queue a push keyed (campaign, openid): running a job twice never sends twice."""
        delivery = self.services.outbox.push(self.db, openid, template, values,
                                             campaign=campaign, kind=kind, now=self.now)
        if delivery is not None:
            self.pushed.append(delivery)
        return delivery

    def push_many(self, openids, template: str, *, campaign: str, kind: str = "scheduled",
                  **values) -> list:
        """Queue one message to many recipients in one batch, keyed (campaign, openid)."""
        deliveries = self.services.outbox.push_many(self.db, openids, template, values,
                                                    campaign=campaign, kind=kind, now=self.now)
        self.pushed.extend(deliveries)
        return deliveries


def run_job(services, db, spec: JobSpec, now: datetime) -> int:
    """Run one job in its own transaction; deliveries are dispatched after commit."""
    with db.session() as session:
        job = JobCtx(db=session, now=now, services=services)
        count = spec.func(job)
    services.outbox.after_commit(job.pushed)
    return count
