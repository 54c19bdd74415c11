"""Scheduled jobs: visit notices and festival greetings (09:00), birthday greetings (08:00).

Each job looks at today only: a run missed while the scheduler was down is caught up by the
scheduler the same day (PRODUCT.md 8) and never on a later day.
"""
from __future__ import annotations

from bot.jobs import JobSpec
from handlers.festivals import service
from handlers.festivals.calendar import load_calendar


def _local_now(job):
    return job.now.astimezone(job.settings.zone)


def festival_notices(job) -> int:
    """Job: the visit notices due today (days_before each festival)."""
    return service.send_notices(job.db, load_calendar(job.settings), _local_now(job), job.push)


def festival_greetings(job) -> int:
    """Job: the greetings of today's festivals."""
    return service.send_greetings(job.db, load_calendar(job.settings), _local_now(job),
                                  job.push)


def birthday_greetings(job) -> int:
    """Job: today's birthday greetings, and staff told of milestone birthdays ahead."""
    return service.send_birthdays(job.db, load_calendar(job.settings), _local_now(job),
                                  job.push)


jobs = [
    JobSpec("festival_notices", festival_notices, {"trigger": "cron", "hour": 9, "minute": 0},
            "Festival visit notices, days_before each festival (config/festivals.yaml)"),
    JobSpec("festival_greetings", festival_greetings,
            {"trigger": "cron", "hour": 9, "minute": 0}, "Greetings on each festival's day"),
    JobSpec("birthday_greetings", birthday_greetings,
            {"trigger": "cron", "hour": 8, "minute": 0},
            "Birthday greetings; staff told of 80/90/100… birthdays a week ahead"),
]
