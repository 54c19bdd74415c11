"""The daily fee_reminders job: on (or after a missed) step day, remind whoever owes.

The job runs every day at reminder.time. On a given day the step that is due is the latest
configured step day on or before today in this month, so a step missed while the process was
down is sent by the next daily run, until the following step replaces it. Each recipient gets
a step once: the campaign key is `fees:<period>:step<day>` and pushes are idempotent per
(campaign, openid). Days before the month's first step send nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime

import yaml

from bot.jobs import JobSpec
from handlers.fees import service
from handlers.fees.config import DEFAULT_TIME, FeeConfigError, load_config
from handlers.fees.service import item_view, period_view, yuan
from models.people import recipients_of

logger = logging.getLogger(__name__)
JOB_NAME = "fee_reminders"


def campaign_of(period: str, step: int) -> str:
    """The push campaign of one reminder step."""
    return f"fees:{period}:step{step}"


def send_reminders(session, config, now: datetime, zone, push) -> int:
    """Queue one reminder per recipient for the step due today; returns how many were new."""
    local = now.astimezone(zone)
    step = service.due_step(config.step_days, local.date())
    if step is None:
        return 0
    period = service.period_of(now, zone)
    campaign, sent = campaign_of(period, step), 0
    for cadre, items in service.unpaid_by_cadre(session, period):
        views = [item_view(i) for i in items]
        total = yuan(sum(i.amount_fen for i in items))
        relations = service.relations_of(session, cadre.id)
        for openid in recipients_of(session, cadre.id):
            if push(openid, "fees/reminder", campaign=campaign, kind="scheduled",
                    cadre_name=cadre.name, family=relations.get(openid) == "family",
                    items=views, total=total, how_to_pay=config.how_to_pay,
                    **period_view(period)) is not None:
                sent += 1
    logger.info("fee reminders %s: %d new push(es)", campaign, sent)
    return sent


def fee_reminders(job) -> int:
    """Job: remind cadres (and bound family) of unpaid fees on the configured step days."""
    return send_reminders(job.db, load_config(job.settings), job.now, job.settings.zone,
                          job.push)


def reminder_trigger() -> dict:
    """Daily cron at config/fees.yaml's reminder.time (09:30 when the file is unusable:
    `check` has already refused to start the app with it)."""
    try:
        at = load_config().reminder_time
    except (OSError, yaml.YAMLError, FeeConfigError, ValueError, TypeError):
        logger.warning("fee config unreadable for the job trigger; using %s", DEFAULT_TIME)
        at = DEFAULT_TIME
    return {"trigger": "cron", "hour": at.hour, "minute": at.minute}


def build_jobs() -> list[JobSpec]:
    """The feature's jobs, with the run time read from config/fees.yaml."""
    return [JobSpec(JOB_NAME, fee_reminders, reminder_trigger(),
                    "Fee reminders to cadres and family with unpaid items (step days)")]


# Read once when the scheduler imports the feature (a changed time needs a restart).
jobs = build_jobs()
