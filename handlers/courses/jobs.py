"""Scheduled job: class reminders the evening before each session (18:00 local)."""
from __future__ import annotations

import logging

from bot.jobs import JobSpec
from handlers.courses import service

logger = logging.getLogger(__name__)


def class_reminders(job) -> int:
    """Job: remind enrolled cadres and their family of tomorrow's sessions (once each)."""
    count = service.send_reminders(job.db, job.now, job.push)
    logger.info("class reminders for %s: %d queued", job.now.date().isoformat(), count)
    return count


jobs = [
    JobSpec("class_reminders", class_reminders, {"trigger": "cron", "hour": 18, "minute": 0},
            "The evening before each class session: remind enrolled cadres and their family"),
]
