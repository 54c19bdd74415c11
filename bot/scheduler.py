"""The scheduler process (PRODUCT.md 8): APScheduler 3 firing the features' jobs.

Every scheduler process runs APScheduler with the same triggers, but only the leader fires:
leadership is a Redis key with an expiry, renewed by its holder every third of the expiry, and
taken by another process once it lapses (so a dead leader is replaced well within a minute).
Each firing is recorded as a JobRun keyed (job, scheduled time), so one fire time runs once
even if two processes briefly both believe they lead. A new leader first runs, once, any job
whose last fire time today has no record: a job missed while the process was down runs when it
comes back the same day.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from redis.exceptions import LockError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.jobs import JobSpec, run_job
from bot.kv import RedisDown
from models import utcnow
from models.messages import JobRun

logger = logging.getLogger(__name__)
LEADER_KEY = "yinling:scheduler:leader"


def job_registry() -> dict[str, JobSpec]:
    """Every feature module's `jobs`, by name (a name used twice is a programming error)."""
    import bot

    specs: dict[str, JobSpec] = {}
    for module in bot.feature_modules():
        for spec in getattr(module, "jobs", ()):
            if spec.name in specs:
                raise ValueError(f"job {spec.name!r} is defined twice")
            specs[spec.name] = spec
    return specs


def make_trigger(spec: JobSpec, zone):
    """The APScheduler trigger of a JobSpec, in YINLING_TZ.

    Interval jobs count from a fixed local midnight (2000-01-01), so every process computes the
    same fire times and a fire time identifies one run.
    """
    args = dict(spec.trigger)
    kind = args.pop("trigger", None)
    if kind == "cron":
        return CronTrigger(timezone=zone, **args)
    if kind == "interval":
        args.setdefault("start_date", datetime(2000, 1, 1, tzinfo=zone))
        return IntervalTrigger(timezone=zone, **args)
    if kind == "date":
        return DateTrigger(timezone=zone, **args)
    raise ValueError(f"job {spec.name!r}: unknown trigger {kind!r} (cron, interval or date)")


def next_fire_time(trigger, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`."""
    return trigger.get_next_fire_time(after, after + timedelta(microseconds=1))


def last_fire_time(trigger, now: datetime, since: datetime) -> datetime | None:
    """The latest fire time t with since <= t <= now, or None."""
    step = timedelta(seconds=1)
    while True:  # look back 1 s, 2 s, 4 s… until a fire time turns up
        start = max(now - step, since)
        found = trigger.get_next_fire_time(None, start)
        if found is not None and found <= now:
            break
        if start == since:
            return None
        step *= 2
    while True:
        following = next_fire_time(trigger, found)
        if following is None or following > now:
            return found
        found = following


class LeaderLock:
    """The leader's Redis key: taken when free, renewed by its holder, lapsing if it dies."""

    def __init__(self, redis, ttl: float, owner: str, key: str = LEADER_KEY):
        self.owner = owner
        self.lock = redis.lock(key, timeout=ttl, thread_local=False)

    def hold(self) -> bool:
        """Renew the lock if held, else try to take it; True while this process leads."""
        try:
            if self.lock.local.token is not None:
                try:
                    return bool(self.lock.reacquire())
                except LockError:
                    self.lock.local.token = None
                    logger.warning("scheduler %s lost the leader lock", self.owner)
            return bool(self.lock.acquire(blocking=False, token=self.owner))
        except RedisDown:
            logger.warning("Redis unreachable: scheduler %s cannot lead for now", self.owner)
            return False

    def held(self) -> bool:
        """True when Redis still names this process the leader."""
        try:
            return self.lock.local.token is not None and self.lock.owned()
        except RedisDown:
            return False

    def release(self) -> None:
        """Give up leadership now, so another process takes over at once."""
        try:
            if self.lock.local.token is not None:
                self.lock.release()
        except (LockError, *RedisDown):
            logger.info("leader lock already gone")


class Scheduler:
    """Fires the registry's jobs on time from exactly one of several processes."""

    def __init__(self, app, specs: dict | None = None, clock=None, owner: str | None = None):
        self.yl = app.extensions["yinling"]
        settings = self.yl.settings
        self.zone = settings.zone
        self.specs = job_registry() if specs is None else specs
        self.triggers = {name: make_trigger(spec, self.zone) for name, spec in self.specs.items()}
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.leader = LeaderLock(self.yl.redis, settings.scheduler_lock_seconds, self.owner)
        self.renew_every = settings.scheduler_lock_seconds / 3
        self.clock = clock or (lambda: datetime.now(self.zone))
        self.is_leader = False
        self.aps = BackgroundScheduler(timezone=self.zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._stop = threading.Event()
        self._leading = threading.Thread(target=self._lead, name="leader", daemon=True)

    # ---- process life --------------------------------------------------------------------
    def start(self) -> None:
        """Add every job to APScheduler, start it, and start contending for leadership."""
        for name in self.specs:
            self.aps.add_job(self.fire, self.triggers[name], args=(name,), id=name, name=name)
        self.aps.start()
        self._leading.start()
        logger.info("scheduler %s started with %d jobs", self.owner, len(self.specs))

    def shutdown(self) -> None:
        """Stop firing, wait for running jobs, and hand leadership over."""
        self._stop.set()
        if self._leading.is_alive():
            self._leading.join(timeout=10)
        if self.aps.running:
            self.aps.shutdown(wait=True)
        self.leader.release()
        logger.info("scheduler %s stopped", self.owner)

    def _lead(self) -> None:
        # Its own thread: a long job never delays the renewal of the lock.
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.renew_every)

    def tick(self) -> bool:
        """Hold or take the leader lock; a new leader first catches up on today's missed runs."""
        was_leader, self.is_leader = self.is_leader, self.leader.hold()
        if self.is_leader and not was_leader:
            logger.info("scheduler %s is now the leader", self.owner)
            if self.aps.running:
                self.aps.add_job(self.catch_up, id="catch-up", replace_existing=True)
            else:
                self.catch_up()
        elif was_leader and not self.is_leader:
            logger.warning("scheduler %s is no longer the leader", self.owner)
        return self.is_leader

    # ---- firing --------------------------------------------------------------------------
    def fire(self, name: str) -> int | None:
        """APScheduler's callback: run `name` for the fire time just passed, if we lead."""
        if not self.leader.held():
            logger.debug("%s: not the leader, %s left to the leader", self.owner, name)
            return None
        now = self.clock()
        scheduled = last_fire_time(self.triggers[name], now, now - timedelta(days=1)) or now
        return self.run(name, scheduled, now)

    def catch_up(self, now: datetime | None = None) -> list[str]:
        """Run, once, every job whose last fire time today has no record (missed while down)."""
        now = now or self.clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        ran = []
        for name, trigger in self.triggers.items():
            scheduled = last_fire_time(trigger, now, midnight)
            if scheduled is not None and self.run(name, scheduled, now, take_over=True) \
                    is not None:
                logger.info("caught up %s (due %s)", name, scheduled.isoformat())
                ran.append(name)
        return ran

    def run(self, name: str, scheduled: datetime, now: datetime,
            take_over: bool = False) -> int | None:
        """Run a job once for this fire time; None when it already ran (or failed)."""
        run_id = self._begin(name, scheduled, take_over)
        if run_id is None:
            return None
        logger.info("job %s (due %s) starting", name, scheduled.isoformat(timespec="minutes"))
        try:
            count = run_job(self.yl, self.specs[name], now)
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
            logger.exception("job %s failed", name)
            self._end(run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            return None
        self._end(run_id, "done", count=count)
        logger.info("job %s done: %s", name, count)
        return count

    def _begin(self, name: str, scheduled: datetime, take_over: bool) -> int | None:
        """Record the run; None when this fire time is taken (or, with take_over, finished)."""
        try:
            with self.yl.db.session() as session:
                row = JobRun(job=name, scheduled_for=scheduled, runner=self.owner)
                session.add(row)
            return row.id
        except IntegrityError:
            pass
        if not take_over:
            return None
        # A new leader re-runs a fire time whose runner died mid-job (its work rolled back).
        with self.yl.db.session() as session:
            run_id = session.scalar(select(JobRun.id).where(
                JobRun.job == name, JobRun.scheduled_for == scheduled,
                JobRun.status == "running", JobRun.runner != self.owner))
            if run_id is None:
                return None
            taken = session.execute(update(JobRun).where(
                JobRun.id == run_id, JobRun.status == "running").values(
                runner=self.owner, started_at=utcnow())).rowcount
            return run_id if taken else None

    def _end(self, run_id: int, status: str, **values) -> None:
        with self.yl.db.session() as session:
            session.execute(update(JobRun).where(JobRun.id == run_id).values(
                status=status, finished_at=utcnow(), **values))


def parse_local(text: str, zone) -> datetime:
    """An ISO date-time as local time in YINLING_TZ (a given offset is converted)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def run_now(app, name: str, now: datetime | None = None) -> int:
    """Run one job now, as if at `now` local time (operators and tests); not a scheduled run."""
    yl = app.extensions["yinling"]
    specs = job_registry()
    if name not in specs:
        raise KeyError(name)
    now = now or datetime.now(yl.settings.zone)
    logger.info("job %s run by hand as if at %s", name, now.isoformat())
    return run_job(yl, specs[name], now)


def serve(app) -> None:
    """The `flask --app bot scheduler` process: run until SIGTERM or SIGINT."""
    yl = app.extensions["yinling"]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    yl.dispatcher.start()  # without REDIS_URL this process delivers its jobs' pushes itself
    scheduler = Scheduler(app)
    scheduler.start()
    try:
        while not stop.wait(1):
            pass
    finally:
        scheduler.shutdown()
        yl.dispatcher.shutdown()
