"""The contract between features and the scheduler: JobSpec and the JobCtx a job receives."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from bot.work import Work, work_for


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


@dataclass(kw_only=True)
class JobCtx(Work):
    """What a job may use: the unit of work (session, local 'now', rendering, pushes keyed
    by campaign so that running a job twice never sends twice) and the job's name."""

    name: str = ""
    push_kind: str = "scheduled"
    bulk_kind: str = "scheduled"


def run_job(yl, spec: JobSpec, now: datetime) -> int:
    """Run one job in its own unit of work; deliveries are dispatched after the commit."""
    with work_for(yl, now=now, cls=JobCtx, name=spec.name) as job:
        return spec.func(job)
